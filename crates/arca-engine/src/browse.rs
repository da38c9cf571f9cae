//! Browsing a snapshot without restoring it.

use arca_format::tree::{Content, Node};

use crate::index::MasterIndex;
use crate::repo::Repository;
use crate::{EngineError, Result};

/// A node with its path inside the snapshot (bytes, starting with `/`).
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
}

/// Splits `/a/b/` into `[a, b]`.
pub(crate) fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect()
}

/// Lists everything at and under `path` (all of the snapshot for `/`).
pub fn list(
    repo: &Repository,
    index: &MasterIndex,
    root: &arca_format::id::Id,
    path: &[u8],
) -> Result<Vec<Entry>> {
    let mut tree = repo.read_tree(index, root)?;
    let mut prefix = Vec::new();
    let comps = components(path);
    let mut out = Vec::new();
    for (i, comp) in comps.iter().enumerate() {
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name == *comp)
            .cloned()
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "{} is not in this backup",
                    String::from_utf8_lossy(path)
                ))
            })?;
        prefix.push(b'/');
        prefix.extend_from_slice(comp);
        match &node.content {
            Content::Dir { tree: t } => tree = repo.read_tree(index, t)?,
            _ if i + 1 == comps.len() => {
                out.push(Entry { path: prefix, node });
                return Ok(out);
            }
            _ => {
                return Err(EngineError::NotFound(format!(
                    "{} is not a directory in this backup",
                    String::from_utf8_lossy(&prefix)
                )));
            }
        }
    }
    walk(repo, index, &prefix, &tree.nodes, &mut out)?;
    Ok(out)
}

fn walk(
    repo: &Repository,
    index: &MasterIndex,
    prefix: &[u8],
    nodes: &[Node],
    out: &mut Vec<Entry>,
) -> Result<()> {
    for node in nodes {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&node.name);
        let sub = match &node.content {
            Content::Dir { tree } => Some(repo.read_tree(index, tree)?),
            _ => None,
        };
        out.push(Entry {
            path: path.clone(),
            node: node.clone(),
        });
        if let Some(t) = sub {
            walk(repo, index, &path, &t.nodes, out)?;
        }
    }
    Ok(())
}
