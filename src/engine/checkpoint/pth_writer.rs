//! Writing a zip-format `.pth` that `torch.load(f, weights_only=True)` opens as an
//! `OrderedDict` of tensors, laid out like `torch.save` output (PyTorch 2.x).

use std::io::{Seek, Write};
use std::path::Path;

use super::error::CheckpointError;
use super::tensor::RawTensor;

/// Pickle opcodes used by the writer.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const MARK: u8 = b'(';
    pub const TUPLE: u8 = b't';
    pub const REDUCE: u8 = b'R';
    pub const BINPERSID: u8 = b'Q';
    pub const SETITEMS: u8 = b'u';
    pub const STOP: u8 = b'.';
    pub const NEWFALSE: u8 = 0x89;
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
}

struct PickleWriter {
    out: Vec<u8>,
    memo: u32,
}

impl PickleWriter {
    fn put(&mut self) -> u32 {
        let id = self.memo;
        if id < 256 {
            self.out.extend_from_slice(&[op::BINPUT, id as u8]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&id.to_le_bytes());
        }
        self.memo += 1;
        id
    }
    fn get(&mut self, id: u32) {
        if id < 256 {
            self.out.extend_from_slice(&[op::BINGET, id as u8]);
        } else {
            self.out.push(op::LONG_BINGET);
            self.out.extend_from_slice(&id.to_le_bytes());
        }
    }
    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }
    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: usize) {
        if v < 256 {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if v < 65536 {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= i32::MAX as usize {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // LONG1 with 8 bytes (positive, fits in i64 as usize <= 2^63 here).
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&(v as u64).to_le_bytes());
        }
    }
    fn int_tuple(&mut self, v: &[usize]) {
        match v.len() {
            0 => self.out.push(op::EMPTY_TUPLE),
            1..=3 => {
                for &x in v {
                    self.int(x);
                }
                self.out.push(0x84 + v.len() as u8); // TUPLE1..TUPLE3
            }
            _ => {
                self.out.push(op::MARK);
                for &x in v {
                    self.int(x);
                }
                self.out.push(op::TUPLE);
            }
        }
    }
}

/// The `data.pkl` pickle: an OrderedDict of `_rebuild_tensor_v2` calls, storage `i` for
/// tensor `i`.
pub fn state_dict_pickle(tensors: &[(String, RawTensor)]) -> Vec<u8> {
    let mut w = PickleWriter {
        out: Vec::new(),
        memo: 0,
    };
    w.out.extend_from_slice(&[op::PROTO, 2]);
    w.global("collections", "OrderedDict");
    let od = w.put();
    w.out.push(op::EMPTY_TUPLE);
    w.out.push(op::REDUCE);
    w.put();
    let mut rebuild = None;
    let mut storage_classes: Vec<(&'static str, u32)> = Vec::new();
    let mut storage_str = None;
    let mut cpu = None;
    for (chunk_start, chunk) in tensors.chunks(1000).enumerate().map(|(i, c)| (i * 1000, c)) {
        w.out.push(op::MARK);
        for (j, (name, t)) in chunk.iter().enumerate() {
            let i = chunk_start + j;
            w.str(name);
            w.put();
            match rebuild {
                Some(id) => w.get(id),
                None => {
                    w.global("torch._utils", "_rebuild_tensor_v2");
                    rebuild = Some(w.put());
                }
            }
            w.out.push(op::MARK);
            // Persistent id ('storage', torch.XStorage, key, 'cpu', numel).
            w.out.push(op::MARK);
            match storage_str {
                Some(id) => w.get(id),
                None => {
                    w.str("storage");
                    storage_str = Some(w.put());
                }
            }
            let cls = t.dtype.storage_name();
            match storage_classes.iter().find(|(c, _)| *c == cls) {
                Some(&(_, id)) => w.get(id),
                None => {
                    w.global("torch", cls);
                    let id = w.put();
                    storage_classes.push((cls, id));
                }
            }
            w.str(&i.to_string());
            w.put();
            match cpu {
                Some(id) => w.get(id),
                None => {
                    w.str("cpu");
                    cpu = Some(w.put());
                }
            }
            w.int(t.numel());
            w.out.push(op::TUPLE);
            w.put();
            w.out.push(op::BINPERSID);
            w.int(0);
            w.int_tuple(&t.shape);
            w.put();
            let mut stride = vec![0usize; t.shape.len()];
            let mut acc = 1usize;
            for k in (0..t.shape.len()).rev() {
                stride[k] = acc;
                acc = acc.saturating_mul(t.shape[k]);
            }
            w.int_tuple(&stride);
            w.put();
            w.out.push(op::NEWFALSE);
            w.get(od);
            w.out.push(op::EMPTY_TUPLE);
            w.out.push(op::REDUCE);
            w.put();
            w.out.push(op::TUPLE);
            w.put();
            w.out.push(op::REDUCE);
            w.put();
        }
        w.out.push(op::SETITEMS);
    }
    w.out.push(op::STOP);
    w.out
}

/// Writes the zip archive to `out`.
pub fn write_pth<W: Write + Seek>(
    out: W,
    path: &Path,
    tensors: &[(String, RawTensor)],
) -> Result<(), CheckpointError> {
    let werr = |detail: String| CheckpointError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let mut seen = std::collections::HashSet::new();
    for (name, t) in tensors {
        t.check().map_err(|detail| CheckpointError::InvalidTensor {
            path: path.to_path_buf(),
            name: name.clone(),
            detail,
        })?;
        if !seen.insert(name.as_str()) {
            return Err(CheckpointError::InvalidTensor {
                path: path.to_path_buf(),
                name: name.clone(),
                detail: "the name is used twice".into(),
            });
        }
    }
    let pkl = state_dict_pickle(tensors);
    let mut zw = zip::ZipWriter::new(StopAtFirstError::new(out));
    let opts = |large: bool| {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .with_alignment(64)
            .large_file(large)
    };
    let entry = |zw: &mut zip::ZipWriter<StopAtFirstError<W>>,
                 name: String,
                 data: &[u8]|
     -> Result<(), CheckpointError> {
        zw.start_file(name.clone(), opts(data.len() as u64 >= u32::MAX as u64))
            .map_err(|e| werr(format!("zip entry {name}: {e}")))?;
        zw.write_all(data)
            .map_err(|e| werr(format!("zip entry {name}: {e}")))
    };
    let a = "archive";
    entry(&mut zw, format!("{a}/data.pkl"), &pkl)?;
    entry(&mut zw, format!("{a}/.format_version"), b"1")?;
    entry(&mut zw, format!("{a}/.storage_alignment"), b"64")?;
    entry(&mut zw, format!("{a}/byteorder"), b"little")?;
    for (i, (_, t)) in tensors.iter().enumerate() {
        entry(&mut zw, format!("{a}/data/{i}"), &t.data)?;
    }
    entry(&mut zw, format!("{a}/version"), b"3\n")?;
    entry(
        &mut zw,
        format!("{a}/.data/serialization_id"),
        b"0000000000000000000000000000000000000000",
    )?;
    let mut inner = zw
        .finish()
        .map_err(|e| werr(format!("finishing the zip archive: {e}")))?;
    inner.flush().map_err(|e| werr(e.to_string()))?;
    Ok(())
}

/// The archive's output, which after its first failed write, flush or seek takes every
/// later one as done without touching `inner`. That first error is the one `write_pth`
/// reports (the caller removes the half-written file); a `ZipWriter` dropped after an
/// error finalises the archive, and on a full disk that failed again and printed its own
/// "ZipWriter drop failed" line into rift's one-paragraph error.
struct StopAtFirstError<W> {
    inner: W,
    failed: bool,
    /// Position and length the archive would have (kept after a failure, for its seeks).
    pos: u64,
    end: u64,
}

impl<W> StopAtFirstError<W> {
    fn new(inner: W) -> Self {
        StopAtFirstError {
            inner,
            failed: false,
            pos: 0,
            end: 0,
        }
    }
    fn advance(&mut self, n: usize) {
        self.pos += n as u64;
        self.end = self.end.max(self.pos);
    }
    fn fail<T>(&mut self, e: std::io::Error) -> std::io::Result<T> {
        self.failed = true;
        Err(e)
    }
}

impl<W: Write> Write for StopAtFirstError<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            self.advance(buf.len());
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Ok(n) => {
                self.advance(n);
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        match self.inner.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
}

impl<W: Seek> Seek for StopAtFirstError<W> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        if !self.failed {
            return match self.inner.seek(to) {
                Ok(p) => {
                    self.pos = p;
                    self.end = self.end.max(p);
                    Ok(p)
                }
                Err(e) => self.fail(e),
            };
        }
        let from = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
            SeekFrom::End(d) => self.end as i128 + d as i128,
        };
        self.pos = from.max(0) as u64;
        Ok(self.pos)
    }
}
