//! The data directory's identity file (`meta.properties`): which cluster and which node it belongs
//! to. Created on first start with a new cluster id; a data dir of another node is refused; the id the
//! metadata agreed on replaces the one a node proposed while the cluster formed.

use std::path::Path;

use anyhow::Context;
use chronik_raft::{MetaCommand, MetaNode, MetaResponse};

/// Identity file: the cluster id and node id this data directory belongs to.
const IDENTITY_FILE: &str = "meta.properties";

/// The cluster id every broker reports: the first one written to the metadata wins (the first broker
/// to start proposes the id of its identity file). The agreed id is taken from the answer to the write,
/// not from this node's state: a write forwarded to the leader is answered once the leader applied it,
/// possibly before this node has. A node whose identity file holds another id (it proposed one while
/// the cluster formed) rewrites it to the agreed one.
pub(super) async fn agree_cluster_id(meta: &MetaNode, data_dir: &Path, node_id: u64, proposed: String) -> anyhow::Result<String> {
    let agreed = match meta.state().cluster_id.clone() {
        Some(known) => known,
        None => match meta
            .write(MetaCommand::InitClusterId { cluster_id: proposed.clone() })
            .await
            .context("cannot record the cluster id in the metadata")?
        {
            MetaResponse::ClusterId(agreed) => agreed,
            other => anyhow::bail!("the metadata refused the cluster id {proposed}: {other:?}"),
        },
    };
    if agreed != proposed {
        write_identity(data_dir, &agreed, node_id)?;
    }
    Ok(agreed)
}

fn write_identity(data_dir: &Path, cluster: &str, node_id: u64) -> anyhow::Result<()> {
    let path = data_dir.join(IDENTITY_FILE);
    let tmp = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
    std::fs::write(&tmp, format!("cluster.id={cluster}\nnode.id={node_id}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).context("fsync identity file")?;
    std::fs::rename(&tmp, &path).context("install identity file")?;
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).context("fsync data dir")?;
    Ok(())
}

/// The cluster id this data dir belongs to; created on first start. A data dir of another node is refused.
pub(super) fn load_identity(data_dir: &Path, node_id: u64) -> anyhow::Result<String> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut cluster = None;
            let mut node = None;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("cluster.id=") {
                    cluster = Some(v.trim().to_string());
                }
                if let Some(v) = line.strip_prefix("node.id=") {
                    node = v.trim().parse::<u64>().ok();
                }
            }
            let cluster = cluster.with_context(|| format!("{} has no cluster.id", path.display()))?;
            if node != Some(node_id) {
                anyhow::bail!(
                    "data dir {} belongs to node {:?}, not node {node_id}; node ids are never reused for a data dir",
                    data_dir.display(),
                    node
                );
            }
            Ok(cluster)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster = new_cluster_id();
            write_identity(data_dir, &cluster, node_id)?;
            Ok(cluster)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Kafka cluster ids are 22-character URL-safe base64 of a random UUID.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_created_once_and_refused_to_another_node() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = load_identity(dir.path(), 1).expect("created");
        assert_eq!(first.len(), 22);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{first}");
        assert_eq!(load_identity(dir.path(), 1).expect("read back"), first);
        assert!(load_identity(dir.path(), 2).is_err(), "a data dir of node 1 taken by node 2");
        write_identity(dir.path(), "agreed", 1).expect("rewritten");
        assert_eq!(load_identity(dir.path(), 1).expect("read back"), "agreed");
        assert_ne!(new_cluster_id(), new_cluster_id());
    }
}
