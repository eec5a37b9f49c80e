//! [`BackgroundWriter`]: hands the bytes a [`crate::Streamer`] produces to a thread that does the writing,
//! so the QUIC stack's thread pays for formatting events and not for the write syscalls (about 170 ns
//! per event of kernel time on ext4, as much as the formatting itself). quic-go logs the same way, through
//! a channel and a goroutine.
//!
//! [`crate::Streamer::background`] hands its filled buffers over whole (swapping each for an emptied one
//! that comes back from the thread), so nothing is copied; as a plain `Write`, a `BackgroundWriter` copies
//! what it is given into such a buffer.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] chunks wait for the thread; past that, `write` waits like
//! a plain file write would. The first write error is kept and returned by the next `write`, `flush` or
//! [`BackgroundWriter::finish`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Chunks queued for the I/O thread at most.
pub const IN_FLIGHT: usize = 8;

enum Msg {
    Data(Vec<u8>),
    Flush(SyncSender<io::Result<()>>),
}

/// A `Write` whose writes happen on its own thread. See the module docs.
pub struct BackgroundWriter<W> {
    tx: Option<SyncSender<Msg>>,
    /// Emptied chunks coming back for reuse, so a long log allocates only a few.
    recycled: Receiver<Vec<u8>>,
    failed: Arc<AtomicBool>,
    error: Arc<Mutex<Option<io::Error>>>,
    thread: Option<JoinHandle<W>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    /// Start the I/O thread writing into `out`.
    pub fn spawn(mut out: W) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(IN_FLIGHT);
        let (give_back, recycled) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let failed = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (thread_failed, thread_error) = (failed.clone(), error.clone());
        let thread = std::thread::Builder::new().name("qlog-writer".into()).spawn(move || {
            let keep = |e: io::Error| {
                if !thread_failed.swap(true, Ordering::SeqCst) {
                    if let Ok(mut slot) = thread_error.lock() {
                        *slot = Some(e);
                    }
                }
            };
            for msg in rx {
                match msg {
                    Msg::Data(mut chunk) => {
                        if !thread_failed.load(Ordering::SeqCst) {
                            if let Err(e) = out.write_all(&chunk) {
                                keep(e);
                            }
                        }
                        chunk.clear();
                        let _ = give_back.try_send(chunk);
                    }
                    Msg::Flush(done) => {
                        let result = if thread_failed.load(Ordering::SeqCst) { Ok(()) } else { out.flush() };
                        if let Err(e) = result {
                            keep(e);
                        }
                        let _ = done.send(Ok(()));
                    }
                }
            }
            out
        })?;
        Ok(BackgroundWriter { tx: Some(tx), recycled, failed, error, thread: Some(thread) })
    }
}

// No bounds here: a `Streamer<W>` holds one for any `W: Write` and reaches these through its sink.
impl<W> BackgroundWriter<W> {
    fn take_error(&self) -> io::Result<()> {
        if !self.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let kept = self.error.lock().ok().and_then(|mut slot| slot.take());
        Err(kept.unwrap_or_else(|| io::Error::other("an earlier background write failed")))
    }

    /// Queues the filled `buf` for the thread as it is, leaving an emptied buffer of the same capacity in
    /// its place (one the thread has finished with, else a new one).
    pub(crate) fn hand_over(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.take_error()?;
        let capacity = buf.capacity();
        let empty = self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(capacity));
        self.send(Msg::Data(std::mem::replace(buf, empty)))
    }

    fn send(&self, msg: Msg) -> io::Result<()> {
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| io::Error::other("the qlog writer thread has stopped")),
            None => Err(io::Error::other("the background writer is finished")),
        }
    }

    /// Waits until everything queued is written and the output flushed.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Msg::Flush(done))?;
        wait.recv().map_err(|_| io::Error::other("the qlog writer thread has stopped"))??;
        self.take_error()
    }

    /// Write everything queued, stop the thread and return the output (or the first write error).
    pub fn finish(mut self) -> io::Result<W> {
        self.sync()?;
        self.tx = None;
        let out = self.thread.take().map(|t| t.join()).transpose();
        self.take_error()?;
        match out {
            Ok(Some(out)) => Ok(out),
            _ => Err(io::Error::other("the qlog writer thread panicked")),
        }
    }
}

impl<W: Write + Send + 'static> Write for BackgroundWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.take_error()?;
        let mut chunk = self.recycled.try_recv().unwrap_or_default();
        chunk.extend_from_slice(buf);
        self.send(Msg::Data(chunk))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sync()
    }
}

impl<W> Drop for BackgroundWriter<W> {
    fn drop(&mut self) {
        // Closing the channel lets the thread write what is queued and end.
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_whole() {
        let mut w = BackgroundWriter::spawn(Vec::new()).unwrap();
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            let piece = format!("event {i};").repeat(1 + (i as usize % 50));
            w.write_all(piece.as_bytes()).unwrap();
            expected.extend_from_slice(piece.as_bytes());
        }
        w.flush().unwrap();
        assert_eq!(w.finish().unwrap(), expected);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_reported_not_lost() {
        let mut w = BackgroundWriter::spawn(Failing).unwrap();
        w.write_all(b"x").unwrap();
        let err = w.flush().unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert!(w.write_all(b"y").is_err());
    }
}
