//! What the shipper reads: anything with a length and positional reads, so compression
//! workers read their own chunks in parallel without sharing a cursor.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A readable snapshot of `len()` bytes.
pub trait Source: Send + Sync + 'static {
    /// The bytes to ship (fixed when the source was opened: a log that keeps growing is
    /// shipped up to the size it had then).
    fn len(&self) -> u64;

    /// True when there is nothing to read.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads at `offset` into `buf`, returning how many bytes were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// A name for messages (the file path).
    fn describe(&self) -> String;

    /// Fills `buf` from `offset`, failing if the source ends early (a log truncated while it
    /// was being shipped).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ended at {} bytes while shipping (truncated?)",
                            self.describe(),
                            offset + done as u64
                        ),
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A local file, opened once; its length is taken at open time.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    path: PathBuf,
}

impl FileSource {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(FileSource { file, len: meta.len(), path: path.to_owned() })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Bytes in memory (tests, generated content).
#[derive(Debug, Clone)]
pub struct MemorySource {
    data: bytes::Bytes,
    name: String,
}

impl MemorySource {
    /// Wraps `data`, named `name` in messages.
    pub fn new(name: impl Into<String>, data: impl Into<bytes::Bytes>) -> Self {
        MemorySource { data: data.into(), name: name.into() }
    }
}

impl Source for MemorySource {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
