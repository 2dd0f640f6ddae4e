//! Turning the suites directory into named scenarios: `<area>/<name>.yaml`
//! becomes `area::name`, sorted, every file parsed and validated before
//! anything runs.

use orphanage_scenario::{parse, ParseError, Scenario};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Loaded {
    /// `area::name`.
    pub name: String,
    pub area: String,
    /// The file it came from, relative to the working directory when it is
    /// under it (`suites/area/name.yaml`), so reports can point at it.
    pub file: PathBuf,
    pub scenario: Scenario,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{}: no such suites directory", .0.display())]
    MissingDir(PathBuf),
    #[error("{}: no scenarios (expected <area>/<name>.yaml files)", .0.display())]
    Empty(PathBuf),
    #[error("{}: scenario files live at <suites>/<area>/<name>.yaml", .0.display())]
    Misplaced(PathBuf),
    #[error("{}: `{}` is not a valid test name part (lowercase letters, digits, _)", .0.display(), .1)]
    BadName(PathBuf, String),
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Every `.yaml` file at depth two, sorted by path.
pub fn scenario_files(root: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
    if !root.is_dir() {
        return Err(DiscoverError::MissingDir(root.to_path_buf()));
    }
    let mut files = Vec::new();
    for area in std::fs::read_dir(root).map_err(|e| DiscoverError::Io(root.to_path_buf(), e))? {
        let area = area
            .map_err(|e| DiscoverError::Io(root.to_path_buf(), e))?
            .path();
        if area.is_file() {
            if is_yaml(&area) {
                return Err(DiscoverError::Misplaced(area));
            }
            continue;
        }
        for file in std::fs::read_dir(&area).map_err(|e| DiscoverError::Io(area.clone(), e))? {
            let file = file.map_err(|e| DiscoverError::Io(area.clone(), e))?.path();
            if is_yaml(&file) {
                files.push(file);
            } else if file.is_dir() {
                return Err(DiscoverError::Misplaced(file));
            }
        }
    }
    if files.is_empty() {
        return Err(DiscoverError::Empty(root.to_path_buf()));
    }
    files.sort();
    Ok(files)
}

fn is_yaml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// `area::name` for a file at `<root>/<area>/<name>.yaml`.
pub fn test_name(file: &Path) -> Result<(String, String), DiscoverError> {
    let part = |s: Option<&std::ffi::OsStr>| s.and_then(|s| s.to_str()).unwrap_or("").to_string();
    let area = part(file.parent().and_then(|p| p.file_name()));
    let name = part(file.file_stem());
    for p in [&area, &name] {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(DiscoverError::BadName(file.to_path_buf(), p.clone()));
        }
    }
    Ok((format!("{area}::{name}"), area))
}

/// A path as a user would type it from here: relative when under the
/// working directory, else as given.
pub fn shown_path(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            let abs = std::fs::canonicalize(path).ok()?;
            abs.strip_prefix(std::fs::canonicalize(cwd).ok()?)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf())
}

/// Loads every scenario, or returns every error (each one line), so a user fixes them all at once.
pub fn load_all(root: &Path) -> Result<Vec<Loaded>, Vec<DiscoverError>> {
    let files = scenario_files(root).map_err(|e| vec![e])?;
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let result = test_name(&path).and_then(|(name, area)| {
            let text =
                std::fs::read_to_string(&path).map_err(|e| DiscoverError::Io(path.clone(), e))?;
            let scenario = parse(&path.display().to_string(), &text)?;
            Ok(Loaded {
                name,
                area,
                file: shown_path(&path),
                scenario,
            })
        });
        match result {
            Ok(l) => loaded.push(l),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "suites/subreaper/nearest_ancestor_adopts.yaml",
        "subreaper::nearest_ancestor_adopts"
    )]
    #[case("x/memfd/seal_write.yml", "memfd::seal_write")]
    fn names_come_from_paths(#[case] path: &str, #[case] name: &str) {
        assert_eq!(test_name(Path::new(path)).unwrap().0, name);
    }

    #[rstest]
    #[case("suites/Sub/x.yaml")]
    #[case("suites/sub/has-dash.yaml")]
    fn bad_names_are_rejected(#[case] path: &str) {
        assert!(test_name(Path::new(path)).is_err());
    }

    #[test]
    fn an_empty_directory_is_an_error_not_a_green_run() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            scenario_files(dir.path()),
            Err(DiscoverError::Empty(_))
        ));
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(matches!(
            scenario_files(Path::new("/no/such/dir")),
            Err(DiscoverError::MissingDir(_))
        ));
    }
}
