//! A buffered file writer that leaves whole pages of zero bytes as holes:
//! a design matrix of several species is mostly zeros (absent species
//! combinations), and not copying those pages into the page cache is most of
//! the cost of writing it. The bytes read back are the same; on a file
//! system without holes, the skipped ranges are filled with zeros by the
//! system.
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

/// Granularity of holes, in bytes (the usual page and block size).
const PAGE: u64 = 4096;
/// Bytes buffered before they are written out.
const BUFFER: usize = 1 << 20;

/// A `File` writer (with `Seek`) whose all-zero aligned pages are skipped.
pub struct SparseFile {
    file: File,
    /// bytes not yet written, starting at file offset `start`
    buf: Vec<u8>,
    start: u64,
    /// logical length: the largest offset written so far
    len: u64,
}

impl SparseFile {
    /// Writes into `file` from its start (the file should be empty).
    pub fn new(file: File) -> SparseFile {
        SparseFile { file, buf: Vec::with_capacity(BUFFER + PAGE as usize), start: 0, len: 0 }
    }

    /// Writes `bytes` at `offset`, skipping all-zero pages (page-aligned in
    /// the file).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut k = 0usize;
        // start of the pending run of bytes to write
        let mut run: Option<usize> = None;
        while k < bytes.len() {
            let at = offset + k as u64;
            let next = ((at / PAGE + 1) * PAGE - offset) as usize;
            let end = next.min(bytes.len());
            let page = &bytes[k..end];
            let whole = at % PAGE == 0 && page.len() as u64 == PAGE;
            if whole && is_zero(page) {
                if let Some(r) = run.take() {
                    self.file.seek(SeekFrom::Start(offset + r as u64))?;
                    self.file.write_all(&bytes[r..k])?;
                }
            } else if run.is_none() {
                run = Some(k);
            }
            k = end;
        }
        if let Some(r) = run {
            self.file.seek(SeekFrom::Start(offset + r as u64))?;
            self.file.write_all(&bytes[r..])?;
        }
        Ok(())
    }

    /// Writes the buffer out up to its last page boundary (`all`: entirely).
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        let end = self.start + self.buf.len() as u64;
        let cut = if all { end } else { (end / PAGE * PAGE).max(self.start) };
        let n = (cut - self.start) as usize;
        if n == 0 {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_at(self.start, &buf[..n]);
        self.buf = buf;
        self.buf.drain(..n);
        self.start = cut;
        result
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    // SAFETY: every bit pattern is a valid u64, so viewing aligned bytes as
    // words is sound
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    head.iter().all(|&b| b == 0) && words.iter().fold(0u64, |a, &w| a | w) == 0 && tail.iter().all(|&b| b == 0)
}

impl Write for SparseFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        self.len = self.len.max(self.start + self.buf.len() as u64);
        if self.buf.len() >= BUFFER {
            self.drain(false)?;
        }
        Ok(bytes.len())
    }

    /// Writes everything buffered and gives the file its full length (a
    /// trailing hole included).
    fn flush(&mut self) -> std::io::Result<()> {
        self.drain(true)?;
        if self.file.metadata()?.len() < self.len {
            self.file.set_len(self.len)?;
        }
        self.file.flush()
    }
}

impl Seek for SparseFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.drain(true)?;
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.start.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the file"))?;
        self.start = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn reads_back_the_bytes_written_with_holes_for_zero_pages() {
        let dir = std::env::temp_dir().join(format!("acdc-sparse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.bin");
        // a header, runs of zeros of every length around page boundaries,
        // non-zero bytes between them, a header rewritten at the end, and
        // trailing zeros
        let mut expected = vec![7u8; 100];
        let mut w = SparseFile::new(File::create(&path).unwrap());
        w.write_all(&expected).unwrap();
        let mut seed = 12345u64;
        for _ in 0..300 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let zeros = (seed >> 33) as usize % 20000;
            let ones = (seed >> 13) as usize % 50;
            let mut chunk = vec![0u8; zeros];
            chunk.extend(std::iter::repeat(3u8).take(ones));
            w.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        w.write_all(&vec![0u8; 3 * PAGE as usize + 5]).unwrap();
        expected.extend(std::iter::repeat(0u8).take(3 * PAGE as usize + 5));
        w.seek(SeekFrom::Start(0)).unwrap();
        w.write_all(&[9u8; 10]).unwrap();
        expected[..10].copy_from_slice(&[9u8; 10]);
        w.seek(SeekFrom::End(0)).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
