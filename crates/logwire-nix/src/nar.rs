//! A streaming NAR skipper: NarFromPath replies and AddToStore < 1.25 carry a raw NAR whose end is only
//! known by parsing it (`archive.cc parseDump`). Contents are skipped as they arrive, never buffered.

use crate::error::DecodeError;
use crate::wire::{padding, Reader};

/// Longest non-contents token (names, symlink targets, keywords) accepted.
const MAX_TOKEN: u64 = 64 * 1024;
/// Deepest directory nesting accepted.
const MAX_DEPTH: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Magic,
    NodeOpen,
    TypeKeyword,
    TypeValue,
    /// After `type regular`: "executable", "contents" or ")".
    RegularNext,
    ExecutableEmpty,
    ContentsKeyword,
    ContentsLen,
    Close,
    TargetKeyword,
    TargetValue,
    /// Inside a directory: "entry" or ")".
    DirNext,
    EntryOpen,
    NameKeyword,
    NameValue,
    NodeKeyword,
    EntryClose,
    Done,
}

/// Consumes one NAR from a byte stream, piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarSkipper {
    expect: Expect,
    /// Entries we are inside of.
    depth: u32,
    /// Contents bytes (with padding) still to skip.
    skipping: u64,
    /// Padding bytes among `skipping`, which must be zero.
    pad_left: u64,
    /// Total contents bytes seen.
    pub contents_bytes: u64,
}

impl Default for NarSkipper {
    fn default() -> Self {
        NarSkipper { expect: Expect::Magic, depth: 0, skipping: 0, pad_left: 0, contents_bytes: 0 }
    }
}

impl NarSkipper {
    pub fn is_done(&self) -> bool {
        self.expect == Expect::Done
    }

    /// Consumes what it can of `input`; returns the bytes consumed. Check [`NarSkipper::is_done`].
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, DecodeError> {
        let mut pos = 0usize;
        while !self.is_done() {
            if self.skipping > 0 {
                let step = self.skipping.min((input.len() - pos) as u64) as usize;
                let data_left = self.skipping - self.pad_left;
                // Bytes of this step that fall into the padding must be zero.
                let pad_start = data_left.min(step as u64) as usize;
                if input[pos + pad_start..pos + step].iter().any(|&b| b != 0) {
                    return Err(DecodeError::Nar("non-zero padding after contents"));
                }
                let pad_seen = (step - pad_start) as u64;
                self.pad_left -= pad_seen;
                self.skipping -= step as u64;
                pos += step;
                if self.skipping > 0 {
                    return Ok(pos);
                }
                self.expect = Expect::Close;
                continue;
            }
            if self.expect == Expect::ContentsLen {
                let mut r = Reader::new(&input[pos..], Default::default());
                let len = match r.u64() {
                    Ok(len) => len,
                    Err(e) if e.is_incomplete() => return Ok(pos),
                    Err(e) => return Err(e),
                };
                pos += 8;
                self.contents_bytes = self.contents_bytes.saturating_add(len);
                self.pad_left = padding(len);
                self.skipping = len.saturating_add(self.pad_left);
                if self.skipping == 0 {
                    self.expect = Expect::Close;
                }
                continue;
            }
            let mut r = Reader::new(&input[pos..], Default::default());
            let token = match r.bytes_capped(MAX_TOKEN) {
                Ok(token) => token,
                Err(e) if e.is_incomplete() => return Ok(pos),
                Err(_) => return Err(DecodeError::Nar("bad token")),
            };
            pos += r.position();
            self.expect = self.next(token)?;
        }
        Ok(pos)
    }

    fn node_closed(&self) -> Expect {
        if self.depth == 0 {
            Expect::Done
        } else {
            Expect::EntryClose
        }
    }

    fn next(&mut self, token: &[u8]) -> Result<Expect, DecodeError> {
        let want = |expected: &[u8], then: Expect| {
            if token == expected {
                Ok(then)
            } else {
                Err(DecodeError::Nar("unexpected token"))
            }
        };
        match self.expect {
            Expect::Magic => want(b"nix-archive-1", Expect::NodeOpen),
            Expect::NodeOpen => want(b"(", Expect::TypeKeyword),
            Expect::TypeKeyword => want(b"type", Expect::TypeValue),
            Expect::TypeValue => match token {
                b"regular" => Ok(Expect::RegularNext),
                b"symlink" => Ok(Expect::TargetKeyword),
                b"directory" => Ok(Expect::DirNext),
                _ => Err(DecodeError::Nar("unknown node type")),
            },
            Expect::RegularNext => match token {
                b"executable" => Ok(Expect::ExecutableEmpty),
                b"contents" => Ok(Expect::ContentsLen),
                b")" => Ok(self.node_closed()),
                _ => Err(DecodeError::Nar("unexpected token in regular file")),
            },
            Expect::ExecutableEmpty => want(b"", Expect::ContentsKeyword),
            Expect::ContentsKeyword => match token {
                b"contents" => Ok(Expect::ContentsLen),
                b")" => Ok(self.node_closed()),
                _ => Err(DecodeError::Nar("unexpected token in regular file")),
            },
            Expect::Close => {
                if token != b")" {
                    return Err(DecodeError::Nar("expected )"));
                }
                Ok(self.node_closed())
            }
            Expect::TargetKeyword => want(b"target", Expect::TargetValue),
            Expect::TargetValue => Ok(Expect::Close),
            Expect::DirNext => match token {
                b"entry" => {
                    if self.depth >= MAX_DEPTH {
                        return Err(DecodeError::Nar("directories nested too deep"));
                    }
                    self.depth += 1;
                    Ok(Expect::EntryOpen)
                }
                b")" => Ok(self.node_closed()),
                _ => Err(DecodeError::Nar("unexpected token in directory")),
            },
            Expect::EntryOpen => want(b"(", Expect::NameKeyword),
            Expect::NameKeyword => want(b"name", Expect::NameValue),
            Expect::NameValue => Ok(Expect::NodeKeyword),
            Expect::NodeKeyword => want(b"node", Expect::NodeOpen),
            Expect::EntryClose => {
                if token != b")" {
                    return Err(DecodeError::Nar("expected ) after entry"));
                }
                self.depth -= 1;
                Ok(Expect::DirNext)
            }
            Expect::ContentsLen | Expect::Done => Err(DecodeError::Nar("internal state")),
        }
    }
}

/// Writes a NAR of a small tree, for tests and for daemons that serve NarFromPath.
pub mod write {
    use crate::wire::{put_bytes, put_u64};

    pub enum Node<'a> {
        Regular { executable: bool, contents: &'a [u8] },
        Symlink { target: &'a [u8] },
        Directory(Vec<(&'a [u8], Node<'a>)>),
    }

    pub fn nar(out: &mut Vec<u8>, root: &Node<'_>) {
        put_bytes(out, b"nix-archive-1");
        node(out, root);
    }

    fn node(out: &mut Vec<u8>, n: &Node<'_>) {
        put_bytes(out, b"(");
        put_bytes(out, b"type");
        match n {
            Node::Regular { executable, contents } => {
                put_bytes(out, b"regular");
                if *executable {
                    put_bytes(out, b"executable");
                    put_bytes(out, b"");
                }
                put_bytes(out, b"contents");
                put_u64(out, contents.len() as u64);
                put_bytes_body(out, contents);
            }
            Node::Symlink { target } => {
                put_bytes(out, b"symlink");
                put_bytes(out, b"target");
                put_bytes(out, target);
            }
            Node::Directory(entries) => {
                put_bytes(out, b"directory");
                for (name, child) in entries {
                    put_bytes(out, b"entry");
                    put_bytes(out, b"(");
                    put_bytes(out, b"name");
                    put_bytes(out, name);
                    put_bytes(out, b"node");
                    node(out, child);
                    put_bytes(out, b")");
                }
            }
        }
        put_bytes(out, b")");
    }

    fn put_bytes_body(out: &mut Vec<u8>, body: &[u8]) {
        out.extend_from_slice(body);
        out.resize(out.len() + crate::wire::padding(body.len() as u64) as usize, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::write::{nar, Node};
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        nar(
            &mut out,
            &Node::Directory(vec![
                (
                    b"bin",
                    Node::Directory(vec![(b"hello", Node::Regular { executable: true, contents: b"#!/bin/sh\n" })]),
                ),
                (b"empty", Node::Regular { executable: false, contents: b"" }),
                (b"link", Node::Symlink { target: b"bin/hello" }),
            ]),
        );
        out
    }

    #[test]
    fn skips_a_nar_in_one_piece_and_byte_by_byte() {
        let bytes = sample();
        let mut whole = NarSkipper::default();
        assert_eq!(whole.advance(&bytes), Ok(bytes.len()));
        assert!(whole.is_done());
        assert_eq!(whole.contents_bytes, 10);

        let mut skipper = NarSkipper::default();
        let mut pending = Vec::new();
        for &b in &bytes {
            assert!(!skipper.is_done());
            pending.push(b);
            let used = skipper.advance(&pending).unwrap();
            pending.drain(..used);
        }
        assert!(skipper.is_done() && pending.is_empty());
    }

    #[test]
    fn stops_exactly_at_the_end() {
        let mut bytes = sample();
        let len = bytes.len();
        bytes.extend_from_slice(b"trailing");
        let mut skipper = NarSkipper::default();
        assert_eq!(skipper.advance(&bytes), Ok(len));
    }

    #[test]
    fn rejects_bad_structure() {
        let mut bytes = sample();
        bytes[8] = b'X';
        assert!(matches!(NarSkipper::default().advance(&bytes), Err(DecodeError::Nar(_))));
    }
}
