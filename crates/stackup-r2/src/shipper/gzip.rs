//! Parallel gzip that produces **one** standard gzip member (what `gzip -c` writes), built the
//! way pigz builds it: the input is cut into chunks; each chunk is deflated independently
//! (primed with the previous 32 KiB as dictionary, so the ratio stays that of one stream) and
//! ended with a sync flush, which leaves it byte-aligned so the raw deflate outputs simply
//! concatenate; the last chunk finishes the stream. CRC-32s of the chunks are combined in order
//! for the trailer. Any gunzip reads the result.
//!
//! Compression uses `flate2` on the zlib-rs backend.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The deflate window: the dictionary each chunk is primed with.
pub const WINDOW: usize = 32 * 1024;

/// The 10-byte gzip header: deflate, no name, no mtime, OS unix.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];

/// One compressed chunk.
#[derive(Debug)]
pub struct Piece {
    /// Raw deflate bytes (sync-flushed, or finished for the last chunk).
    pub data: Vec<u8>,
    /// CRC-32 of the uncompressed chunk.
    pub crc: u32,
    /// Uncompressed length.
    pub len: u64,
}

/// Deflates `input` (primed with `dictionary`), sync-flushing unless `last`.
pub fn compress_chunk(input: &[u8], dictionary: &[u8], level: u32, last: bool) -> std::io::Result<Piece> {
    let mut out = Vec::new();
    deflate_chunk(input, dictionary, level, last, &mut out)?;
    Ok(Piece { data: out, crc: crc32fast::hash(input), len: input.len() as u64 })
}

/// Deflates `input` into `out` (cleared first, its allocation kept) with a fresh raw-deflate
/// stream at `level`, primed with `dictionary` and sync-flushed unless `last`. A fresh stream
/// per chunk keeps the output a pure function of the input: a reset zlib-rs stream still
/// looks at its old window and makes slightly different (valid) bytes.
pub fn deflate_chunk(
    input: &[u8],
    dictionary: &[u8],
    level: u32,
    last: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut c = Compress::new(Compression::new(level), false);
    out.clear();
    out.reserve(input.len() / 3 + 1024);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(std::io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut rest = input;
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = c.total_in();
        let status = c.compress_vec(rest, out, flush).map_err(std::io::Error::other)?;
        rest = &rest[(c.total_in() - before) as usize..];
        match status {
            Status::StreamEnd => break,
            _ if !last && rest.is_empty() && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(())
}

/// Combines chunk CRCs in order and counts bytes, for the gzip trailer.
#[derive(Debug, Default)]
pub struct Trailer {
    crc: Option<crc32fast::Hasher>,
    len: u64,
}

impl Trailer {
    /// Adds the next chunk (in input order).
    pub fn push(&mut self, crc: u32, len: u64) {
        let next = crc32fast::Hasher::new_with_initial_len(crc, len);
        match &mut self.crc {
            Some(h) => h.combine(&next),
            None => self.crc = Some(next),
        }
        self.len += len;
    }

    /// Uncompressed bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 8-byte trailer: CRC-32 and length mod 2^32, little endian.
    pub fn bytes(&self) -> [u8; 8] {
        let crc = self.crc.clone().map(|h| h.finalize()).unwrap_or(0);
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&crc.to_le_bytes());
        t[4..].copy_from_slice(&(self.len as u32).to_le_bytes());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn parallel_gzip(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        let mut t = Trailer::default();
        let n = data.len().div_ceil(chunk).max(1);
        for i in 0..n {
            let start = i * chunk;
            let end = (start + chunk).min(data.len());
            let dict = &data[start.saturating_sub(WINDOW)..start];
            let p = compress_chunk(&data[start..end], dict, 6, i + 1 == n).unwrap();
            t.push(p.crc, p.len);
            out.extend_from_slice(&p.data);
        }
        out.extend_from_slice(&t.bytes());
        out
    }

    #[test]
    fn chunks_concatenate_into_one_valid_gzip_member() {
        let mut data = Vec::new();
        for i in 0..8_000u32 {
            data.extend_from_slice(
                format!("{{\"log\":\"request {i} took {}ms\\n\",\"stream\":\"stdout\"}}\n", i * 7 % 113).as_bytes(),
            );
        }
        for chunk in [20_000, 64 * 1024, data.len() + 1] {
            let gz = parallel_gzip(&data, chunk);
            // MultiGzDecoder would hide a second member; GzDecoder reads exactly one.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "chunk {chunk}");
        }
        // Priming with the previous window keeps the ratio of a single stream.
        let one = parallel_gzip(&data, data.len() + 1).len() as f64;
        let many = parallel_gzip(&data, 64 * 1024).len() as f64;
        assert!(many / one < 1.02, "{many} vs {one}");
    }

    #[test]
    fn a_reused_output_buffer_gives_the_same_bytes() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| format!("line {} {}\n", i, i % 17).into_bytes()).collect();
        let chunk = 100_000;
        let mut out = Vec::new();
        for start in (0..data.len()).step_by(chunk) {
            let end = (start + chunk).min(data.len());
            let dict = &data[start.saturating_sub(WINDOW)..start];
            let last = end == data.len();
            deflate_chunk(&data[start..end], dict, 5, last, &mut out).unwrap();
            assert_eq!(out, compress_chunk(&data[start..end], dict, 5, last).unwrap().data, "chunk at {start}");
        }
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let gz = parallel_gzip(&[], 1024);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
