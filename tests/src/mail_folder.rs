//! Polling a Maildir-style folder (`new/` and `cur/`) for delivered messages.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// One delivered message: the file it is stored in and its bytes.
#[derive(Debug)]
pub(crate) struct MessageFile {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
}

/// Waits until at least `count` files in `folder/new` or `folder/cur` contain `needle`, and
/// returns them sorted by file name.
///
/// # Panics
///
/// When `needle` is empty, when a file cannot be read, or when fewer than `count` files match
/// after `timeout`. `log` names the server's log in that message.
pub(crate) fn wait_for_files(
    folder: &Path,
    needle: &[u8],
    count: usize,
    timeout: Duration,
    log: &Path,
) -> Vec<MessageFile> {
    assert!(
        !needle.is_empty(),
        "the needle to search messages for is empty: pass a unique token"
    );
    let deadline = Instant::now() + timeout;
    loop {
        let found = matching_files(folder, needle);
        if found.len() >= count {
            return found;
        }
        if Instant::now() >= deadline {
            panic!(
                "found {} of {count} messages containing {:?} in {} after {timeout:?}; see {}",
                found.len(),
                String::from_utf8_lossy(needle),
                folder.display(),
                log.display(),
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Waits like [`wait_for_files`] and returns the files' bytes only.
pub(crate) fn wait_for_contents(
    folder: &Path,
    needle: &[u8],
    count: usize,
    timeout: Duration,
    log: &Path,
) -> Vec<Vec<u8>> {
    wait_for_files(folder, needle, count, timeout, log)
        .into_iter()
        .map(|file| file.bytes)
        .collect()
}

/// Returns how many files in `folder/new` or `folder/cur` contain `needle` now.
///
/// # Panics
///
/// When `needle` is empty or a file cannot be read.
pub(crate) fn count_files(folder: &Path, needle: &[u8]) -> usize {
    assert!(
        !needle.is_empty(),
        "the needle to search messages for is empty: pass a unique token"
    );
    matching_files(folder, needle).len()
}

fn matching_files(folder: &Path, needle: &[u8]) -> Vec<MessageFile> {
    let mut found = Vec::new();
    for subfolder in ["new", "cur"] {
        let directory = folder.join(subfolder);
        let entries = match fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => panic!("failed to list {}: {error}", directory.display()),
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => panic!("failed to list {}: {error}", directory.display()),
            };
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                // A mail client may move a file from new/ to cur/ between listing and reading.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => panic!(
                    "failed to read {}: {error}; the tests must run as the user that can read \
                     the server's mail (root for Postfix)",
                    path.display()
                ),
            };
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(MessageFile { path, bytes });
            }
        }
    }
    found.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
    found
}

const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An empty Maildir-style folder under the system's temporary directory, unique to this
    /// process and call, removed on drop (also when a test panics).
    #[derive(Debug)]
    pub(crate) struct TemporaryFolder(pub(crate) PathBuf);

    impl TemporaryFolder {
        pub(crate) fn new(label: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "smtp-interop-{label}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(path.join("new")).unwrap();
            fs::create_dir_all(path.join("cur")).unwrap();
            Self(path)
        }
    }

    impl Drop for TemporaryFolder {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn finds_files_in_new_and_cur() {
        let folder = TemporaryFolder::new("find");
        fs::write(folder.0.join("new/2"), b"Subject: token-a\r\n").unwrap();
        fs::write(folder.0.join("cur/1:2,S"), b"Subject: token-a again\r\n").unwrap();
        fs::write(folder.0.join("new/3"), b"Subject: other\r\n").unwrap();

        let found = wait_for_files(&folder.0, b"token-a", 2, Duration::ZERO, Path::new("log"));

        let names: Vec<_> = found
            .iter()
            .map(|file| file.path.file_name().unwrap())
            .collect();
        assert_eq!(names, ["1:2,S", "2"]);
        assert_eq!(found[1].bytes, b"Subject: token-a\r\n");
    }

    #[test]
    #[should_panic(expected = "found 0 of 1 messages containing \"absent\"")]
    fn missing_message_panics_after_timeout() {
        let folder = TemporaryFolder::new("missing");

        wait_for_files(
            &folder.0,
            b"absent",
            1,
            Duration::from_millis(120),
            Path::new("log"),
        );
    }

    #[test]
    #[should_panic(expected = "needle to search messages for is empty")]
    fn empty_needle_panics() {
        let folder = TemporaryFolder::new("empty");

        wait_for_files(&folder.0, b"", 1, Duration::ZERO, Path::new("log"));
    }
}
