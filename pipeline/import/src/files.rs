//! Which files an import reads: the files named, and every NDJSON file under a directory
//! named (recursively, in path order).

use std::path::{Path, PathBuf};

use super::ImportError;

/// Extensions of NDJSON files, alone or before `.gz`.
const EXTENSIONS: [&str; 3] = ["json", "ndjson", "jsonl"];

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size on disk (compressed size for `.gz`).
    pub bytes: u64,
    /// Whether it is gzip-compressed (by its `.gz` extension).
    pub gzip: bool,
}

/// Whether `path` names an NDJSON file (`.json`, `.ndjson`, `.jsonl`, each optionally `.gz`).
pub fn is_ndjson(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    let Some(name) = name else {
        return false;
    };
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    EXTENSIONS
        .iter()
        .any(|ext| name.len() > ext.len() + 1 && name.ends_with(&format!(".{ext}")))
}

/// The files to import from `paths`: a file is taken as named (whatever its extension); a
/// directory contributes its NDJSON files, recursively, sorted by path. A file reached twice
/// is read once.
///
/// # Errors
/// [`ImportError::Input`] for a path that does not exist or cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<InputFile>, ImportError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| ImportError::input(path, e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|path| seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())));
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path)
                .map_err(|e| ImportError::input(&path, e))?
                .len();
            let gzip = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
            Ok(InputFile { path, bytes, gzip })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ImportError::input(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ImportError::input(dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| ImportError::input(&path, e))?;
        let kind = if kind.is_symlink() {
            std::fs::metadata(&path)
                .map_err(|e| ImportError::input(&path, e))?
                .file_type()
        } else {
            kind
        };
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() && is_ndjson(&path) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ndjson_files_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/deeper")).unwrap();
        for name in [
            "b/deeper/z.jsonl",
            "b/a.ndjson.gz",
            "a.json",
            "c.JSONL.GZ",
            "notes.txt",
            "b/x.gz",
            "b/.json",
        ] {
            std::fs::write(root.join(name), b"").unwrap();
        }
        let explicit = root.join("notes.txt");
        let files = discover(&[root.to_path_buf(), explicit.clone(), root.join("a.json")]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "a.json",
                "b/a.ndjson.gz",
                "b/deeper/z.jsonl",
                "c.JSONL.GZ",
                "notes.txt"
            ]
        );
        assert_eq!(
            files.iter().map(|f| f.gzip).collect::<Vec<_>>(),
            [false, true, false, true, false]
        );
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let error = discover(&[PathBuf::from("/no/such/export")]).unwrap_err();
        assert!(error.to_string().contains("/no/such/export"), "{error}");
    }
}
