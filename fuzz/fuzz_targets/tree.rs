//! Trees: the plaintext of a tree blob, decoded and validated as `Repo::read_tree` does
//! (`arca_format::decode::<Tree>` then `Tree::validate`), and as a long file's chunk list
//! (`ChunkList`, also a Tree blob, as `Repository::read_chunk_list` does). The blob framing
//! around it is the `blob` target's.
#![no_main]
use arca_format::tree::{ChunkList, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = arca_format::decode::<ChunkList>(data)
        && list.validate().is_ok()
    {
        let again = arca_format::decode::<ChunkList>(&arca_format::encode(&list)).unwrap();
        assert_eq!(again, list);
    }
    let Ok(tree) = arca_format::decode::<Tree>(data) else {
        return;
    };
    if tree.validate().is_ok() {
        // A valid tree is normalized, and survives encoding.
        let mut sorted = tree.clone();
        sorted.normalize();
        assert_eq!(sorted, tree);
        assert_eq!(
            arca_format::decode::<Tree>(&arca_format::encode(&tree)).unwrap(),
            tree
        );
    }
});
