//! What a runtime keeps of a container in its state directory (`--root`):
//! runc, crun and youki a directory named after the container; runsc a
//! `CONTAINER_sandbox:SANDBOX.state` file and its `.lock` (for a
//! container that is its own sandbox's root, both are its id). Teardown proves a
//! delete by these entries being gone, which is stronger than the runtime's
//! own `state` answering "unknown", and costs no start of the runtime.

use std::path::Path;

/// The entries among `names` (a state directory's listing) that belong to
/// container `id`. Exact: container `c-1` owns neither `c-10` nor
/// `c-1x_sandbox:c-1x.state`.
pub fn entries_of<'a>(id: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| {
            *name == id
                || name.split_once("_sandbox:").is_some_and(|(sandbox, rest)| {
                    sandbox == id
                        || [".state", ".lock"]
                            .iter()
                            .any(|ext| rest.strip_suffix(ext) == Some(id))
                })
        })
        .collect()
}

/// The entries of `root` that belong to container `id`. A directory that
/// cannot be read proves nothing: an error, never an empty list.
pub fn entries_in(root: &Path, id: &str) -> std::io::Result<Vec<String>> {
    let names = std::fs::read_dir(root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<Vec<String>>>()?;
    Ok(entries_of(id, names.iter().map(String::as_str))
        .into_iter()
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::runc_crun_youki(&["orphanage-7-1"], &["orphanage-7-1"])]
    #[case::runsc(
        &["orphanage-7-1_sandbox:orphanage-7-1.state", "orphanage-7-1_sandbox:orphanage-7-1.lock"],
        &["orphanage-7-1_sandbox:orphanage-7-1.state", "orphanage-7-1_sandbox:orphanage-7-1.lock"]
    )]
    #[case::a_longer_id_is_another_container(
        &["orphanage-7-10", "orphanage-7-10_sandbox:orphanage-7-10.state"],
        &[]
    )]
    #[case::a_container_in_another_sandbox(&["orphanage-7-1_sandbox:sb.state"], &["orphanage-7-1_sandbox:sb.state"])]
    #[case::nothing_left(&[], &[])]
    fn entries_are_the_containers_own(#[case] names: &[&str], #[case] expected: &[&str]) {
        assert_eq!(entries_of("orphanage-7-1", names.iter().copied()), expected);
    }

    #[test]
    fn a_directory_lists_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("c-1")).unwrap();
        std::fs::write(dir.path().join("c-2"), "").unwrap();
        assert_eq!(entries_in(dir.path(), "c-1").unwrap(), ["c-1"]);
        std::fs::remove_dir(dir.path().join("c-1")).unwrap();
        assert!(entries_in(dir.path(), "c-1").unwrap().is_empty());
        assert!(entries_in(&dir.path().join("none"), "c-1").is_err());
    }
}
