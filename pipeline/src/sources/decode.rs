//! Decoding raw objects into records: gzip and zstd, NDJSON lines read with a size
//! limit (an oversized line is skipped without being buffered), CSV records with a header,
//! all in chunks for the parallel transform. Whatever cannot be decoded becomes a
//! [`Quarantined`] entry with the object, line number, reason and raw bytes.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};

use crate::Result;
use catalog::layout::{Compression, Format};

/// A record that could not be released, kept with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub object: String,
    /// 1-based line (NDJSON) or record (CSV) number; 0 for object-level problems.
    pub line: u64,
    pub reason: String,
    pub field: Option<String>,
    /// The raw bytes, cut at the line limit for oversized lines.
    pub raw: Vec<u8>,
    /// The full length of the raw line in bytes.
    pub raw_len: u64,
}

impl Quarantined {
    /// The reason as counted in reports: field and reason, no raw value.
    pub fn reason_key(&self) -> String {
        match &self.field {
            Some(f) => format!("{f}: {}", self.reason),
            None => self.reason.clone(),
        }
    }

    /// The quarantine file's JSON line.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "object": self.object,
            "line": self.line,
            "reason": self.reason,
            "field": self.field,
            "raw_len": self.raw_len,
            "raw_truncated": (self.raw.len() as u64) < self.raw_len,
        });
        match std::str::from_utf8(&self.raw) {
            Ok(s) => v["raw"] = s.into(),
            Err(_) => v["raw_hex"] = hex::encode(&self.raw).into(),
        }
        v
    }
}

/// One record as read, before parsing.
#[derive(Debug, Clone)]
pub enum Item {
    /// An NDJSON line: its bytes in the chunk's [`Chunk::text`].
    Json(std::ops::Range<usize>),
    /// A CSV record, fields already in the policy's input order, and its raw text.
    Fields {
        values: Vec<Option<String>>,
        raw: Vec<u8>,
    },
}

/// A record with its position.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: u64,
    pub item: Item,
}

/// Records of one object, handed on together. NDJSON lines share one buffer, so reading
/// allocates per chunk, not per line.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// Index of the object in the release's inputs.
    pub object: u32,
    /// The NDJSON lines, back to back.
    pub text: Vec<u8>,
    pub lines: Vec<Line>,
}

impl Chunk {
    /// The raw bytes of a record, as quarantine keeps them.
    pub fn raw<'a>(&'a self, line: &'a Line) -> &'a [u8] {
        match &line.item {
            Item::Json(range) => &self.text[range.clone()],
            Item::Fields { raw, .. } => raw,
        }
    }
}

/// Chunks handed back once transformed, so that reading reuses their buffers. A fresh
/// 8 MiB buffer per chunk costs a page fault per page touched, each page zeroed by the
/// kernel: on 1M records that was about a tenth of pass 1.
#[derive(Debug, Clone, Default)]
pub struct ChunkPool(std::sync::Arc<std::sync::Mutex<Vec<Chunk>>>);

impl ChunkPool {
    /// More idle chunks than this are freed: the reader never has more in flight.
    const KEEP: usize = 4;

    /// Hands a used chunk back.
    pub fn give(&self, mut chunk: Chunk) {
        chunk.text.clear();
        chunk.lines.clear();
        if let Ok(mut idle) = self.0.lock()
            && idle.len() < Self::KEEP
        {
            idle.push(chunk);
        }
    }

    fn take(&self) -> Option<Chunk> {
        self.0.lock().ok()?.pop()
    }
}

/// A chunk is handed on at this many bytes of text even if it holds fewer lines.
const CHUNK_BYTES: usize = 8 << 20;

/// A failure to fetch an object's bytes from its store (a reset connection, a disk
/// error), as opposed to bytes that do not decode (a truncated gzip stream). The object
/// itself may be fine, so it is not quarantined: the release fails, the object stays
/// pending and the next run reads it again. Quarantining the rest of it would consume it
/// and lose the records after the failure.
#[derive(Debug, thiserror::Error)]
#[error("reading the object from its store failed: {0}")]
pub struct StoreReadError(pub std::io::Error);

/// A read error that is the bytes' own (a decoding failure, to quarantine) as `Ok`; one
/// from the store (see [`StoreReadError`]) as the error that fails the release.
fn decoding_failure(e: std::io::Error) -> Result<std::io::Error> {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<StoreReadError>())
    {
        Err(crate::Error::Io(e))
    } else {
        Ok(e)
    }
}

/// [`decoding_failure`] for the CSV reader's errors.
fn csv_read_failure(e: csv::Error) -> Result<std::io::Error> {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => decoding_failure(e),
        other => Ok(std::io::Error::other(format!("{other:?}"))),
    }
}

/// The read buffer of [`decoder`]'s readers.
const READ_BUFFER: usize = 256 * 1024;

/// Opens a decompressing reader over a raw object's byte stream.
pub fn decoder(
    inner: Box<dyn Read + Send>,
    compression: Compression,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    Ok(match compression {
        Compression::None => Box::new(BufReader::with_capacity(READ_BUFFER, inner)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, inner)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            zstd::stream::read::Decoder::new(inner)?,
        )),
    })
}

/// Result of reading one line with a limit.
enum LineRead {
    Line,
    /// Longer than the limit: `buf` holds its first `limit` bytes, the rest was skipped.
    Oversized(u64),
    Eof,
}

/// Appends the next line to `buf`, up to and excluding `\n` (and a preceding `\r`),
/// keeping at most `limit` bytes of it.
fn read_line_limited(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<LineRead> {
    let start = buf.len();
    let mut total: u64 = 0;
    let mut any = false;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        total += chunk.len() as u64;
        let room = limit.saturating_sub(buf.len() - start);
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(chunk.len());
        r.consume(consumed);
        if done.is_some() {
            break;
        }
    }
    if !any {
        return Ok(LineRead::Eof);
    }
    if buf.len() > start && buf.last() == Some(&b'\r') && total <= limit as u64 {
        buf.pop();
        total -= 1;
    }
    Ok(if total > limit as u64 {
        LineRead::Oversized(total)
    } else {
        LineRead::Line
    })
}

/// Streams the records of one object, `chunk` lines at a time, to `on_chunk`; problems go
/// to `on_quarantine`. A decoding error (truncated gzip, corrupt zstd) quarantines the rest
/// of the object with one entry and keeps what was read before it.
#[allow(clippy::too_many_arguments)]
pub fn read_object(
    reader: &mut dyn BufRead,
    format: Format,
    object_index: u32,
    object_url: &str,
    inputs: &[String],
    csv_delimiter: u8,
    max_line_bytes: usize,
    chunk: usize,
    pool: &ChunkPool,
    on_chunk: &mut dyn FnMut(Chunk) -> Result<()>,
    on_quarantine: &mut dyn FnMut(Quarantined),
    unknown_fields: &mut BTreeSet<String>,
) -> Result<u64> {
    let new_chunk = || match pool.take() {
        Some(reused) => Chunk {
            object: object_index,
            ..reused
        },
        None => Chunk {
            object: object_index,
            // Sized up front: growing by doubling would copy each chunk about twice more.
            text: match format {
                Format::Ndjson => Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
                Format::Csv => Vec::new(),
            },
            lines: Vec::with_capacity(chunk),
        },
    };
    // A byte order mark before the first line (editors on Windows write one) is no part
    // of the record: the first line would fail as JSON. An I/O error here is met again,
    // and reported, by the first read below.
    if format == Format::Ndjson
        && reader
            .fill_buf()
            .is_ok_and(|b| b.starts_with(b"\xEF\xBB\xBF"))
    {
        reader.consume(3);
    }
    let mut current = new_chunk();
    let mut number: u64 = 0;
    let quarantine_io = |number: u64, e: std::io::Error, on_q: &mut dyn FnMut(Quarantined)| {
        on_q(Quarantined {
            object: object_url.to_string(),
            line: number,
            reason: format!(
                "unreadable object from this line on (truncated or corrupt stream: {e})"
            ),
            field: None,
            raw: Vec::new(),
            raw_len: 0,
        })
    };
    match format {
        Format::Ndjson => loop {
            let start = current.text.len();
            let read = match read_line_limited(reader, &mut current.text, max_line_bytes) {
                Ok(r) => r,
                Err(e) => {
                    current.text.truncate(start);
                    let e = decoding_failure(e)?;
                    quarantine_io(number + 1, e, on_quarantine);
                    break;
                }
            };
            match read {
                LineRead::Eof => break,
                LineRead::Oversized(len) => {
                    number += 1;
                    on_quarantine(Quarantined {
                        object: object_url.to_string(),
                        line: number,
                        reason: format!(
                            "line of {len} bytes exceeds the limit of {max_line_bytes}"
                        ),
                        field: None,
                        raw: current.text.split_off(start),
                        raw_len: len,
                    });
                }
                LineRead::Line => {
                    number += 1;
                    if current.text[start..].iter().all(u8::is_ascii_whitespace) {
                        current.text.truncate(start);
                        continue;
                    }
                    current.lines.push(Line {
                        number,
                        item: Item::Json(start..current.text.len()),
                    });
                    if current.lines.len() >= chunk || current.text.len() >= CHUNK_BYTES {
                        on_chunk(std::mem::replace(&mut current, new_chunk()))?;
                    }
                }
            }
        },
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .delimiter(csv_delimiter)
                .has_headers(true)
                .flexible(true)
                .from_reader(reader);
            let headers = match csv.byte_headers() {
                Ok(h) => h.clone(),
                Err(e) => {
                    let e = csv_read_failure(e)?;
                    on_quarantine(Quarantined {
                        object: object_url.to_string(),
                        line: 1,
                        reason: format!("unreadable CSV header: {e}"),
                        field: None,
                        raw: Vec::new(),
                        raw_len: 0,
                    });
                    return Ok(0);
                }
            };
            let slots: Vec<Option<usize>> = headers
                .iter()
                .map(|h| {
                    let name = String::from_utf8_lossy(h).trim().to_string();
                    let slot = inputs.iter().position(|i| *i == name);
                    if slot.is_none() {
                        unknown_fields.insert(name);
                    }
                    slot
                })
                .collect();
            let mut record = csv::ByteRecord::new();
            loop {
                match csv.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) if e.is_io_error() => {
                        quarantine_io(number + 1, csv_read_failure(e)?, on_quarantine);
                        break;
                    }
                    Err(e) => {
                        number += 1;
                        on_quarantine(Quarantined {
                            object: object_url.to_string(),
                            line: number,
                            reason: format!("malformed CSV record: {e}"),
                            field: None,
                            raw: Vec::new(),
                            raw_len: 0,
                        });
                        continue;
                    }
                }
                number += 1;
                let raw = join_record(&record, csv_delimiter);
                let raw_len = raw.len() as u64;
                let problem = if raw.len() > max_line_bytes {
                    Some(format!(
                        "record of {raw_len} bytes exceeds the limit of {max_line_bytes}"
                    ))
                } else if record.len() != headers.len() {
                    Some(format!(
                        "{} fields where the header has {}",
                        record.len(),
                        headers.len()
                    ))
                } else {
                    None
                };
                let values = match problem {
                    Some(p) => Err(p),
                    None => csv_values(&record, &slots, inputs.len()),
                };
                match values {
                    Ok(values) => {
                        current.lines.push(Line {
                            number,
                            item: Item::Fields { values, raw },
                        });
                        if current.lines.len() >= chunk {
                            on_chunk(std::mem::replace(&mut current, new_chunk()))?;
                        }
                    }
                    Err(reason) => on_quarantine(Quarantined {
                        object: object_url.to_string(),
                        line: number,
                        reason,
                        field: None,
                        raw: raw[..raw.len().min(max_line_bytes)].to_vec(),
                        raw_len,
                    }),
                }
            }
        }
    }
    if !current.lines.is_empty() {
        on_chunk(current)?;
    }
    Ok(number)
}

fn join_record(record: &csv::ByteRecord, delimiter: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.as_slice().len() + record.len());
    for (i, f) in record.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        out.extend_from_slice(f);
    }
    out
}

fn csv_values(
    record: &csv::ByteRecord,
    slots: &[Option<usize>],
    n: usize,
) -> Result<Vec<Option<String>>, String> {
    let mut values = vec![None; n];
    for (field, slot) in record.iter().zip(slots) {
        let Some(slot) = slot else { continue };
        let text = std::str::from_utf8(field).map_err(|_| "invalid UTF-8".to_string())?;
        if !text.is_empty() {
            values[*slot] = Some(text.to_string());
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// A reader that hands out at most `step` bytes per read, as a network stream or a
    /// decompressor may: line ends then fall anywhere within and across reads.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// (line number, text) of the records read, and (line number, kept bytes, length)
    /// of the lines quarantined for their size.
    type Split = (Vec<(u64, Vec<u8>)>, Vec<(u64, Vec<u8>, u64)>);

    fn read_ndjson_lines(data: &[u8], step: usize, max_line_bytes: usize, chunk: usize) -> Split {
        let mut reader = std::io::BufReader::with_capacity(
            READ_BUFFER,
            Trickle {
                data: data.to_vec(),
                at: 0,
                step,
            },
        );
        let (mut lines, mut oversized) = (Vec::new(), Vec::new());
        let mut on_chunk = |c: Chunk| -> Result<()> {
            assert!(c.lines.len() <= chunk, "chunks hold at most `chunk` lines");
            for line in &c.lines {
                lines.push((line.number, c.raw(line).to_vec()));
            }
            Ok(())
        };
        let mut on_quarantine = |q: Quarantined| oversized.push((q.line, q.raw, q.raw_len));
        let read = read_object(
            &mut reader,
            Format::Ndjson,
            0,
            "file:///raw/part.ndjson",
            &[],
            b',',
            max_line_bytes,
            chunk,
            &ChunkPool::default(),
            &mut on_chunk,
            &mut on_quarantine,
            &mut BTreeSet::new(),
        )
        .expect("read");
        assert_eq!(read, line_count(data), "every line is counted");
        (lines, oversized)
    }

    /// The lines of a whole input: split at newlines, the last may end without one.
    fn lines_of(data: &[u8]) -> Vec<&[u8]> {
        let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if data.ends_with(b"\n") || data.is_empty() {
            pieces.pop();
        }
        pieces
    }

    fn line_count(data: &[u8]) -> u64 {
        lines_of(data).len() as u64
    }

    /// What splitting the whole input at once gives.
    fn reference_split(data: &[u8], max_line_bytes: usize) -> Split {
        let pieces = lines_of(data);
        let (mut lines, mut oversized) = (Vec::new(), Vec::new());
        for (i, piece) in pieces.into_iter().enumerate() {
            let number = i as u64 + 1;
            // A `\r` before the newline counts towards the limit, and is not kept.
            if piece.len() > max_line_bytes {
                oversized.push((number, piece[..max_line_bytes].to_vec(), piece.len() as u64));
                continue;
            }
            let text = piece.strip_suffix(b"\r").unwrap_or(piece);
            if !text.iter().all(u8::is_ascii_whitespace) {
                lines.push((number, text.to_vec()));
            }
        }
        (lines, oversized)
    }

    #[test]
    fn oversized_lines_are_cut_not_buffered() {
        // One line spans several reads of a full block; the limit keeps only its head.
        let data = format!(
            "short\n{}\nnext\r\n  \nlast",
            "x".repeat(3 * READ_BUFFER + 7)
        );
        let (lines, oversized) = read_ndjson_lines(data.as_bytes(), READ_BUFFER, 100, 1000);
        assert_eq!(
            lines,
            [
                (1, b"short".to_vec()),
                (3, b"next".to_vec()),
                (5, b"last".to_vec())
            ]
        );
        assert_eq!(
            oversized,
            [(2, vec![b'x'; 100], 3 * READ_BUFFER as u64 + 7)]
        );
    }

    /// Gives `data`, then fails with `error` instead of ending (ends without one).
    struct FailsAfter {
        data: std::io::Cursor<Vec<u8>>,
        error: Option<std::io::Error>,
    }

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.data.read(buf)?, self.error.take()) {
                (0, Some(error)) => Err(error),
                (n, error) => {
                    self.error = error;
                    Ok(n)
                }
            }
        }
    }

    #[test]
    fn a_store_read_failure_fails_the_read_while_a_decoding_failure_is_quarantined() {
        use std::io::Write as _;
        let text: String = (0..500).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let half = gz[..gz.len() / 2].to_vec();
        let read = |data: Vec<u8>, error: Option<std::io::Error>, format: Format| {
            let source = FailsAfter {
                data: std::io::Cursor::new(data),
                error,
            };
            let mut reader = decoder(Box::new(source), Compression::Gzip).expect("decoder");
            let mut quarantined = Vec::new();
            let result = read_object(
                reader.as_mut(),
                format,
                0,
                "file:///raw/part.ndjson.gz",
                &[],
                b',',
                1 << 20,
                64,
                &ChunkPool::default(),
                &mut |_| Ok(()),
                &mut |q| quarantined.push(q.reason),
                &mut BTreeSet::new(),
            );
            (result, quarantined)
        };
        // The connection drops halfway: the object may be fine, so nothing of it is
        // quarantined (which would consume it); the read fails and the object stays pending.
        let dropped = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            StoreReadError(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        );
        let (result, quarantined) = read(half.clone(), Some(dropped), Format::Ndjson);
        let error = result.expect_err("a store failure fails the read");
        assert!(error.to_string().contains("from its store"), "{error}");
        assert!(quarantined.is_empty(), "{quarantined:?}");
        // The object itself ends halfway through the gzip stream: the rest is quarantined.
        let (result, quarantined) = read(half, None, Format::Ndjson);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(quarantined.len(), 1, "{quarantined:?}");
        assert!(quarantined[0].contains("unreadable object from this line on"));
        // A CSV object whose first read fails: even its header is not read, and the object
        // must stay pending rather than be quarantined as having an unreadable header.
        let reset = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            StoreReadError(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        );
        let (result, quarantined) = read(Vec::new(), Some(reset), Format::Csv);
        assert!(result.is_err() && quarantined.is_empty(), "{quarantined:?}");
    }

    #[test]
    fn lines_carry_over_between_full_chunks() {
        // More than a chunk's bytes: the line cut by the chunk's end moves to the next.
        let line = format!("{{\"pad\":\"{}\"}}", "p".repeat(1000));
        let data = format!("{line}\n").repeat(CHUNK_BYTES / line.len() + 50);
        let got = read_ndjson_lines(data.as_bytes(), READ_BUFFER, 4096, 1 << 20);
        assert_eq!(got, reference_split(data.as_bytes(), 4096));
        assert_eq!(got.0.len(), CHUNK_BYTES / line.len() + 50);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the read sizes and chunk size, reading gives the lines, numbers and
        /// quarantined heads that splitting the whole input at once gives.
        #[test]
        fn reading_in_pieces_splits_lines_as_a_whole_input_would(
            pieces in proptest::collection::vec(
                prop_oneof![
                    "[a-z{}\":,]{0,40}",
                    Just(String::new()),
                    Just(" \t".to_string()),
                    "[a-z]{0,8}\r",
                    "[a-z]{150,400}",
                    // At the limit (200), with the `\r` that counts towards it.
                    "[a-z]{198,201}\r",
                ],
                0..40,
            ),
            trailing_newline in any::<bool>(),
            step in 1usize..600,
            chunk in 1usize..6,
        ) {
            let mut data = pieces.join("\n").into_bytes();
            if trailing_newline && !data.is_empty() {
                data.push(b'\n');
            }
            prop_assert_eq!(
                read_ndjson_lines(&data, step, 200, chunk),
                reference_split(&data, 200)
            );
        }
    }
}
