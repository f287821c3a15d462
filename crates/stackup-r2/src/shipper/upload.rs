//! The pipeline that ships one source: parallel compression (blocking pool) feeding equal-size
//! parts to several concurrent `UploadPart`s, with memory bounded by
//! `(upload_concurrency + 1) * part_size + compression_jobs * (chunk_size + output)`, whatever
//! the file size. The large buffers are reused rather than freed and allocated again (part
//! buffers come back from finished uploads, each compression thread keeps its input buffer,
//! compressed chunks go back to a pool): with glibc's malloc, freeing megabyte buffers raises
//! its mmap threshold and later ones land on heaps that grow with the file size.
//!
//! A source whose compressed form fits in one part is sent with a single `PutObject`
//! (`If-None-Match: *`). Larger ones use a multipart upload that is created lazily, and that is
//! either completed or aborted: any failure (a part, a read, a compression error) aborts it so no
//! orphaned upload is left behind. A shipment whose future is dropped mid-upload (a caller's
//! timeout, a cancelled task) aborts it too, from a task spawned on the runtime.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::task::JoinSet;

use super::compressors::Compressors;
use super::gzip::{HEADER, Trailer};
use super::source::Source;
use super::{FileOutcome, FileStatus, ShipOptions};
use crate::error::{R2Error, s3_error};

/// The gzip content type; no `Content-Encoding`, so downloads stay compressed.
pub const CONTENT_TYPE: &str = "application/gzip";

pub(crate) struct Upload<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub opts: &'a ShipOptions,
    pub bucket: &'a str,
    pub key: &'a str,
}

fn join_error(e: tokio::task::JoinError) -> R2Error {
    R2Error::Io { path: "compression worker".into(), source: std::io::Error::other(e.to_string()) }
}

impl Upload<'_> {
    /// True when the object exists already (an earlier run shipped it).
    pub async fn exists(&self) -> Result<bool, R2Error> {
        match self.s3.head_object().bucket(self.bucket).key(self.key).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = s3_error("HeadObject", e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    pub async fn run(&self, source: Arc<dyn Source>) -> Result<FileOutcome, R2Error> {
        let started = Instant::now();
        if self.exists().await? {
            return Ok(FileOutcome {
                key: self.key.to_owned(),
                bytes_in: 0,
                bytes_out: 0,
                parts: 0,
                status: FileStatus::AlreadyShipped,
                elapsed: started.elapsed(),
            });
        }
        let mut state = MultipartState::default();
        state.cleanup = Some(Cleanup { s3: self.s3.clone(), bucket: self.bucket.to_owned(), key: self.key.to_owned() });
        let result = self.pipeline(source, &mut state).await;
        match result {
            Ok(mut outcome) => {
                outcome.elapsed = started.elapsed();
                Ok(outcome)
            }
            Err(e) => {
                if let Some(upload_id) = state.upload_id.take() {
                    state.in_flight.abort_all();
                    self.abort(&upload_id).await;
                }
                Err(e)
            }
        }
    }

    async fn abort(&self, upload_id: &str) {
        abort_upload(self.s3, self.bucket, self.key, upload_id).await;
    }

    async fn pipeline(&self, source: Arc<dyn Source>, st: &mut MultipartState) -> Result<FileOutcome, R2Error> {
        let opts = self.opts;
        let total = source.len();
        let chunk = opts.chunk_size as u64;
        let chunks = total.div_ceil(chunk).max(1);
        let mut compressors = Compressors::start(source.clone(), opts.compression_threads, opts.level)
            .map_err(|e| R2Error::Io { path: "compression threads".into(), source: e })?;
        let mut jobs = FuturesOrdered::new();
        let mut next = 0u64;
        let mut part = st.take_buffer(opts.part_size)?;
        part.extend_from_slice(&HEADER);
        let mut trailer = Trailer::default();
        let mut bytes_out = 0u64;
        loop {
            while jobs.len() < opts.compression_jobs() && next < chunks {
                let (start, end) = (next * chunk, ((next + 1) * chunk).min(total));
                jobs.push_back(compressors.submit(start, end, next + 1 == chunks));
                next += 1;
            }
            let Some(piece) = jobs.next().await else { break };
            let piece = piece
                .map_err(|_| R2Error::Io {
                    path: "compression threads".into(),
                    source: std::io::Error::other("a compression thread stopped"),
                })?
                .map_err(|e| R2Error::Io { path: source.describe(), source: e })?;
            trailer.push(piece.crc, piece.len);
            let mut data = &piece.data[..];
            while !data.is_empty() {
                let take = (opts.part_size - part.len()).min(data.len());
                part.extend_from_slice(&data[..take]);
                data = &data[take..];
                if part.len() == opts.part_size {
                    let full = std::mem::replace(&mut part, BytesMut::new()).freeze();
                    bytes_out += full.len() as u64;
                    self.send_part(st, full).await?;
                    part = st.take_buffer(opts.part_size)?;
                }
            }
            compressors.recycle(piece.data);
        }
        part.extend_from_slice(&trailer.bytes());
        bytes_out += part.len() as u64;
        let last = part.freeze();
        if st.upload_id.is_none() {
            let uploaded = self.put_single(last, trailer.len()).await?;
            return Ok(FileOutcome {
                key: self.key.to_owned(),
                bytes_in: trailer.len(),
                bytes_out,
                parts: 1,
                status: if uploaded { FileStatus::Uploaded } else { FileStatus::AlreadyShipped },
                elapsed: Default::default(),
            });
        }
        // The trailer may push the last part past the part size: R2 wants the last part no
        // larger than the others, so send a full part first.
        let mut last = last;
        if last.len() > opts.part_size {
            let rest = last.split_off(opts.part_size);
            self.send_part(st, last).await?;
            last = rest;
        }
        self.send_part(st, last).await?;
        while let Some(done) = st.in_flight.join_next().await {
            st.finish(done)?;
        }
        st.completed.sort_by_key(|p| p.part_number());
        let parts = st.completed.len() as u32;
        let upload_id = st.upload_id.clone().unwrap_or_default();
        self.s3
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut st.completed))).build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
        st.upload_id = None;
        Ok(FileOutcome {
            key: self.key.to_owned(),
            bytes_in: trailer.len(),
            bytes_out,
            parts,
            status: FileStatus::Uploaded,
            elapsed: Default::default(),
        })
    }

    /// `PutObject` with `If-None-Match: *`; `false` when another run wrote the key first.
    async fn put_single(&self, body: Bytes, bytes_in: u64) -> Result<bool, R2Error> {
        let r = self
            .s3
            .put_object()
            .bucket(self.bucket)
            .key(self.key)
            .content_type(CONTENT_TYPE)
            .metadata("source-bytes", bytes_in.to_string())
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = s3_error("PutObject", e);
                if e.is_precondition_failed() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// Starts the multipart upload if needed, waits for a free slot, and spawns the part.
    async fn send_part(&self, st: &mut MultipartState, body: Bytes) -> Result<(), R2Error> {
        if st.upload_id.is_none() {
            let out = self
                .s3
                .create_multipart_upload()
                .bucket(self.bucket)
                .key(self.key)
                .content_type(CONTENT_TYPE)
                .send()
                .await
                .map_err(|e| s3_error("CreateMultipartUpload", e))?;
            let id = out.upload_id().ok_or_else(|| R2Error::S3 {
                operation: "CreateMultipartUpload",
                details: stackup_core::ApiErrorDetails {
                    message: "no UploadId in the answer".into(),
                    ..Default::default()
                },
            })?;
            st.upload_id = Some(id.to_owned());
        }
        while st.in_flight.len() >= self.opts.upload_concurrency {
            if let Some(done) = st.in_flight.join_next().await {
                st.finish(done)?;
            }
        }
        st.next_part += 1;
        let number = st.next_part;
        let s3 = self.s3.clone();
        let (bucket, key, upload_id) =
            (self.bucket.to_owned(), self.key.to_owned(), st.upload_id.clone().unwrap_or_default());
        st.in_flight.spawn(async move {
            let out = s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(|e| s3_error("UploadPart", e))?;
            let done = CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build();
            Ok((done, body))
        });
        Ok(())
    }
}

/// `AbortMultipartUpload`, up to three times; an upload already gone counts as aborted.
async fn abort_upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    for attempt in 1..=3 {
        match s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await {
            Ok(_) => return,
            Err(e) => {
                let e = s3_error("AbortMultipartUpload", e);
                if e.is_not_found() {
                    return;
                }
                tracing::warn!(key, attempt, error = %e, "aborting multipart upload failed");
            }
        }
    }
}

type PartResult = Result<(CompletedPart, Bytes), R2Error>;

/// What [`MultipartState`]'s `Drop` needs to abort an upload the shipment left open.
struct Cleanup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

#[derive(Default)]
struct MultipartState {
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<PartResult>,
    completed: Vec<CompletedPart>,
    /// Part buffers back from finished uploads, ready to be filled again.
    spare: Vec<BytesMut>,
    /// Set by [`Upload::run`]: aborts a still-open upload when the shipment is dropped.
    cleanup: Option<Cleanup>,
}

impl Drop for MultipartState {
    /// [`Upload::run`] completes or aborts the upload itself and clears `upload_id`; an id still
    /// here means its future was dropped mid-upload, so abort the upload in the background.
    fn drop(&mut self) {
        let (Some(upload_id), Some(c)) = (self.upload_id.take(), self.cleanup.take()) else { return };
        self.in_flight.abort_all();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::warn!(key = %c.key, "shipment cancelled mid-upload; aborting its multipart upload");
                runtime.spawn(async move { abort_upload(&c.s3, &c.bucket, &c.key, &upload_id).await });
            }
            Err(_) => {
                tracing::warn!(key = %c.key, upload_id, "shipment dropped outside a runtime; multipart upload left open")
            }
        }
    }
}

impl MultipartState {
    /// An empty part buffer: one back from an upload that has finished, or a new one.
    fn take_buffer(&mut self, part_size: usize) -> Result<BytesMut, R2Error> {
        while let Some(done) = self.in_flight.try_join_next() {
            self.finish(done)?;
        }
        Ok(self.spare.pop().unwrap_or_else(|| BytesMut::with_capacity(part_size)))
    }

    /// Records a finished upload and takes its buffer back when nothing else holds it.
    fn finish(&mut self, done: Result<PartResult, tokio::task::JoinError>) -> Result<(), R2Error> {
        let (part, body) = done.map_err(join_error)??;
        self.completed.push(part);
        if let Ok(mut buffer) = body.try_into_mut() {
            buffer.clear();
            self.spare.push(buffer);
        }
        Ok(())
    }
}
