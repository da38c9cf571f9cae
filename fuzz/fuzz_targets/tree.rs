//! Trees: the plaintext of a tree blob, decoded and validated as `Repo::read_tree` does
//! (`arca_format::decode::<Tree>` then `Tree::validate`). The blob framing around it is the
//! `blob` target's.
#![no_main]
use arca_format::tree::Tree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
