//! The compression threads of one shipment: a fixed number of threads, each with its own input
//! buffer, compressing chunks of a [`Source`] in parallel and answering in the order asked.
//!
//! Dedicated threads rather than tokio's blocking pool: the pool starts a new thread whenever
//! none is idle at the instant a job arrives, so over a long file the number of threads (and of
//! glibc malloc arenas, each keeping its freed memory) creeps up and the peak RSS grows with the
//! file size. With exactly `compression_threads` threads it stays flat.

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::gzip::{self, Piece};
use super::source::Source;

/// One chunk to compress.
struct Job {
    /// Uncompressed range `[start, end)` of the source.
    start: u64,
    end: u64,
    /// The last chunk finishes the deflate stream.
    last: bool,
    /// A buffer to write the compressed bytes into (reused between chunks).
    out: Vec<u8>,
    reply: oneshot::Sender<io::Result<Piece>>,
}

/// A running set of compression threads. Dropping it lets the threads finish their current
/// chunk and exit.
pub(crate) struct Compressors {
    jobs: mpsc::Sender<Job>,
    /// Compressed-chunk buffers handed back by [`Compressors::recycle`].
    spare: Vec<Vec<u8>>,
}

impl Compressors {
    /// Starts `threads` threads compressing chunks of `source` at `level`.
    pub fn start(source: Arc<dyn Source>, threads: usize, level: u32) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let (queue, source) = (queue.clone(), source.clone());
            std::thread::Builder::new()
                .name(format!("stackup-gzip-{n}"))
                .spawn(move || work(&queue, source.as_ref(), level))?;
        }
        Ok(Compressors { jobs, spare: Vec::new() })
    }

    /// Asks for the chunk `[start, end)`; the answer arrives on the returned receiver.
    pub fn submit(&mut self, start: u64, end: u64, last: bool) -> oneshot::Receiver<io::Result<Piece>> {
        let (reply, answer) = oneshot::channel();
        let out = self.spare.pop().unwrap_or_default();
        // The threads live as long as `self` holds the sender, so the send cannot fail while a
        // thread is alive; if every thread died, the dropped reply surfaces as an error.
        let _ = self.jobs.send(Job { start, end, last, out, reply });
        answer
    }

    /// Gives a compressed chunk's buffer back for the next chunk.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare.push(buffer);
    }
}

/// A thread's loop: take the next chunk, read it with the window before it, deflate it.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, source: &dyn Source, level: u32) {
    let mut input = Vec::new();
    loop {
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let Job { start, end, last, mut out, reply } = job;
        let dict_start = start.saturating_sub(gzip::WINDOW as u64);
        let dict_len = (start - dict_start) as usize;
        input.resize((end - dict_start) as usize, 0);
        let result = source.read_exact_at(&mut input, dict_start).and_then(|()| {
            let (dictionary, chunk) = input.split_at(dict_len);
            gzip::deflate_chunk(chunk, dictionary, level, last, &mut out)?;
            Ok(Piece { data: out, crc: crc32fast::hash(chunk), len: chunk.len() as u64 })
        });
        // The shipment may have stopped waiting (it failed elsewhere): nothing to do then.
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shipper::MemorySource;
    use std::io::Read;

    #[tokio::test]
    async fn answers_come_back_in_order_and_make_one_gzip() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        let source: Arc<dyn Source> = Arc::new(MemorySource::new("mem", data.clone()));
        let mut pool = Compressors::start(source, 2, 6).unwrap();
        let chunk = 150_000u64;
        let total = data.len() as u64;
        let n = total.div_ceil(chunk);
        let answers: Vec<_> =
            (0..n).map(|i| pool.submit(i * chunk, ((i + 1) * chunk).min(total), i + 1 == n)).collect();
        let mut gz = gzip::HEADER.to_vec();
        let mut trailer = gzip::Trailer::default();
        for a in answers {
            let piece = a.await.unwrap().unwrap();
            trailer.push(piece.crc, piece.len);
            gz.extend_from_slice(&piece.data);
            pool.recycle(piece.data);
        }
        gz.extend_from_slice(&trailer.bytes());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[tokio::test]
    async fn a_read_error_is_answered_not_lost() {
        let source: Arc<dyn Source> = Arc::new(MemorySource::new("mem", vec![b'x'; 1000]));
        let mut pool = Compressors::start(source, 1, 6).unwrap();
        // The source has 1000 bytes: asking past its end is a truncated read.
        let e = pool.submit(0, 5000, true).await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
