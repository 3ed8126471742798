//! One client connection. Requests are read and handled in order, one at a time (as Kafka does), so a
//! pipelining producer's batches are appended in the order sent. A handler may hand back a response that
//! completes later (a produce waiting for its fsync); the writer task sends responses strictly in request
//! order, and the bounded queue between reader and writer limits how many may be outstanding. A response
//! may be a list of chunks ([`ResponseFrame`]); it is written with `writev`, so Fetch record data goes
//! from the mapped segment to the socket without a copy in user space.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, Instrument};

use super::dispatch;
use crate::metrics::ProduceStage;
use crate::wire::context::{Deferred, Reply};
use crate::wire::frame::read_frame;
use crate::wire::response::ResponseFrame;
use crate::broker::Broker;

/// Responses allowed to be in flight per connection (clients pipeline at most 5 by default).
const PENDING_RESPONSES_MAX: usize = 64;

enum Outgoing {
    Ready(ResponseFrame),
    Later(oneshot::Receiver<Option<Deferred>>),
}

pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    let span = tracing::debug_span!("connection", %peer);
    async move {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Outgoing>(PENDING_RESPONSES_MAX);
        let metrics = broker.clone();
        let writer_task = tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let (mut frame, ready) = match out {
                    Outgoing::Ready(f) => (f, None),
                    Outgoing::Later(waiter) => match waiter.await {
                        Ok(Some(d)) => (ResponseFrame::from(d.frame), Some(d.ready)),
                        Ok(None) => continue,
                        Err(_) => break,
                    },
                };
                metrics.metrics.bytes_out(frame.len());
                if writer.write_all_buf(&mut frame).await.is_err() {
                    break;
                }
                // Only produce answers later; its wait to be written is one of its stages.
                if let Some(ready) = ready {
                    metrics.metrics.produce_stage(ProduceStage::Written, ready.elapsed());
                }
            }
            let _ = writer.shutdown().await;
        });
        loop {
            let frame = match read_frame(&mut reader, broker.config.frame_bytes_max).await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "closing connection");
                    break;
                }
            };
            broker.metrics.bytes_in(frame.len() + 4);
            let out = match dispatch::handle(&broker, frame, &peer).await {
                Ok(Reply::Now(Some(b))) => Outgoing::Ready(b.into()),
                Ok(Reply::Frame(f)) => Outgoing::Ready(f),
                Ok(Reply::Now(None)) => continue,
                Ok(Reply::Later(rx)) => Outgoing::Later(rx),
                Err(e) if e.is_broker_bug() => {
                    error!(error = %e, "closing connection");
                    break;
                }
                Err(e) => {
                    debug!(error = %e, "closing connection");
                    break;
                }
            };
            if tx.send(out).await.is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer_task.await;
    }
    .instrument(span)
    .await
}
