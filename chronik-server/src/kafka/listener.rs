//! Accepts Kafka connections, at most `connections_max` at once.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::broker::Broker;

pub async fn run(broker: Arc<Broker>, listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(broker.config.connections_max));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%peer, max = broker.config.connections_max, "connections_max reached; refusing connection");
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            super::connection::serve(broker, stream, peer).await;
            drop(permit);
        });
    }
}
