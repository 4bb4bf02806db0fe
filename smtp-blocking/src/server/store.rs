//! The message folder: each message and its envelope become files only when complete, through a
//! temporary file and a rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::server::Error;

/// The `messages` folder under the server's folder.
#[derive(Debug)]
pub(crate) struct Store {
    messages: PathBuf,
}

impl Store {
    /// Creates `folder/messages` unless it exists.
    pub(crate) fn open(folder: &Path) -> Result<Self, Error> {
        let messages = folder.join(MESSAGES_FOLDER);
        fs::create_dir_all(&messages).map_err(|source| Error::Folder {
            path: messages.clone(),
            source,
        })?;
        Ok(Self { messages })
    }

    /// Returns the folder the messages are stored in.
    pub(crate) fn messages(&self) -> &Path {
        &self.messages
    }

    /// Opens a temporary file for the content of a new message under a fresh id.
    pub(crate) fn begin(&self) -> io::Result<PendingMessage> {
        let id = unique_name();
        let temp = self.messages.join(format!(".{id}.eml.tmp"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;

        Ok(PendingMessage {
            id,
            folder: self.messages.clone(),
            temp,
            file: Some(BufWriter::new(file)),
            size: 0,
            error: None,
            stored: false,
        })
    }
}

/// A message whose content is being written; dropping it before [`finish`](Self::finish)
/// removes the temporary file.
#[derive(Debug)]
pub(crate) struct PendingMessage {
    id: String,
    folder: PathBuf,
    temp: PathBuf,
    /// `None` once `finish` has flushed it.
    file: Option<BufWriter<File>>,
    size: u64,
    /// The first write error; later chunks are dropped and `finish` returns it.
    error: Option<io::Error>,
    /// Set once the content file has its final name.
    stored: bool,
}

/// The files of a stored message.
#[derive(Debug)]
pub(crate) struct StoredFiles {
    pub(crate) id: String,
    pub(crate) message: PathBuf,
    pub(crate) envelope: PathBuf,
    pub(crate) size: u64,
}

impl PendingMessage {
    /// Appends content octets.
    pub(crate) fn write(&mut self, chunk: &[u8]) {
        let (Some(file), None) = (self.file.as_mut(), self.error.as_ref()) else {
            return;
        };
        match file.write_all(chunk) {
            Ok(()) => self.size += chunk.len() as u64,
            Err(error) => self.error = Some(error),
        }
    }

    /// Returns how many content octets were written.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Writes `envelope` as `ID.envelope`, then renames the content to `ID.eml`, so a reader who
    /// sees the message file finds its envelope complete too.
    ///
    /// NOTE: the files are not synced to disk, so a crash of the machine can lose a message
    /// that was acknowledged; the folder serves tests and demos, not real mail.
    pub(crate) fn finish(mut self, envelope: &str) -> io::Result<StoredFiles> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let file = self
            .file
            .take()
            .expect("finish consumes the message, so the file is still open");
        file.into_inner().map_err(io::IntoInnerError::into_error)?;

        let envelope_path = self.folder.join(format!("{}.envelope", self.id));
        write_file_atomically(&envelope_path, envelope.as_bytes(), false)?;
        let message_path = self.folder.join(format!("{}.eml", self.id));
        fs::rename(&self.temp, &message_path)?;
        self.stored = true;

        Ok(StoredFiles {
            id: std::mem::take(&mut self.id),
            message: message_path,
            envelope: envelope_path,
            size: self.size,
        })
    }
}

impl Drop for PendingMessage {
    fn drop(&mut self) {
        if !self.stored {
            let _ignored = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so no
/// reader sees a partial file; `private` makes the file readable by its owner only.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    write_file_atomically(path, bytes, private).map_err(|source| Error::Folder {
        path: path.to_owned(),
        source,
    })
}

fn write_file_atomically(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path has no file name"))?;
    let temp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), unique_name()));

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;

    let result = options
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ignored = fs::remove_file(&temp);
    }
    result
}

/// Returns a name no other message of this machine has: the time in seconds and nanoseconds,
/// the process id and a counter of this process, such as `1767225600.000012345.4242.7`.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:09}.{}.{}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The folder under the server's folder that contains the messages.
pub(crate) const MESSAGES_FOLDER: &str = "messages";

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_folder(label: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("smtp-blocking-store-{label}-{}", unique_name()));
        fs::create_dir_all(&folder).unwrap();
        folder
    }

    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn finish_writes_message_and_envelope() {
        let folder = temp_folder("finish");
        let store = Store::open(&folder).unwrap();

        let mut pending = store.begin().unwrap();
        pending.write(b"Subject: a\r\n");
        pending.write(b"\r\nbody\r\n");
        let stored = pending.finish("mail-from: <a@example.test>\n").unwrap();

        assert_eq!(
            fs::read(&stored.message).unwrap(),
            b"Subject: a\r\n\r\nbody\r\n"
        );
        assert_eq!(
            fs::read_to_string(&stored.envelope).unwrap(),
            "mail-from: <a@example.test>\n"
        );
        assert_eq!(stored.size, 20);
        assert_eq!(
            names(store.messages()),
            [
                format!("{}.eml", stored.id),
                format!("{}.envelope", stored.id)
            ]
        );
        fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn dropped_message_leaves_no_file() {
        let folder = temp_folder("drop");
        let store = Store::open(&folder).unwrap();

        let mut pending = store.begin().unwrap();
        pending.write(b"partial");
        assert_eq!(
            names(store.messages()).len(),
            1,
            "the temporary file exists"
        );
        drop(pending);

        assert!(names(store.messages()).is_empty());
        fs::remove_dir_all(folder).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;

        let folder = temp_folder("private");
        let path = folder.join("server.key");

        write_atomically(&path, b"key", true).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(names(&folder), ["server.key"]);
        fs::remove_dir_all(folder).unwrap();
    }
}
