//! Reading helpers of the pickle VM: fixed-size fields, lines, protocol-0 literals, opcode
//! names.

use super::error::PickleError;
use super::pickle_vm::{Node, Vm, V};

impl<'a> Vm<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| PickleError::Truncated {
                opcode: self.op_name.to_string(),
                offset: self.op_offset,
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(super) fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| PickleError::Truncated {
            opcode: self.op_name.to_string(),
            offset: self.op_offset,
        })
    }
    pub(super) fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let nl = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| PickleError::Truncated {
                opcode: self.op_name.to_string(),
                offset: self.op_offset,
            })?;
        let l = &rest[..nl];
        self.pos += nl + 1;
        Ok(l.strip_suffix(b"\r").unwrap_or(l))
    }

    pub(super) fn str_node(&mut self, bytes: &[u8]) -> Result<V, PickleError> {
        self.charge(bytes.len())?;
        let s = String::from_utf8_lossy(bytes).into_owned();
        Ok(self.alloc(Node::Str(s)))
    }
    pub(super) fn bytes_node(&mut self, bytes: &[u8]) -> Result<V, PickleError> {
        self.charge(bytes.len())?;
        Ok(self.alloc(Node::Bytes(bytes.to_vec())))
    }
    pub(super) fn long_from_le(&mut self, b: &[u8]) -> V {
        if b.is_empty() {
            return V::Int(0);
        }
        if b.len() <= 8 {
            let neg = b[b.len() - 1] & 0x80 != 0;
            let mut a = [if neg { 0xff } else { 0 }; 8];
            a[..b.len()].copy_from_slice(b);
            return V::Int(i64::from_le_bytes(a));
        }
        // Too big for i64: keep the two's complement bytes as hex text.
        let mut s = String::from("0x");
        for byte in b.iter().rev() {
            s.push_str(&format!("{byte:02x}"));
        }
        self.alloc(Node::BigInt(s))
    }
}

pub(super) fn parse_decimal(l: &[u8]) -> Option<u64> {
    std::str::from_utf8(l).ok()?.trim().parse().ok()
}

/// Decodes a protocol-0 STRING literal (`'abc'` or `"abc"` with Python escapes) to bytes.
pub(super) fn decode_string_literal(l: &[u8]) -> Option<Vec<u8>> {
    if l.len() < 2 || l[0] != l[l.len() - 1] || (l[0] != b'\'' && l[0] != b'"') {
        return None;
    }
    let s = &l[1..l.len() - 1];
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = *s.get(i + 1)?;
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + (s[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' => {
                let h = std::str::from_utf8(s.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Decodes Python's raw-unicode-escape (used by protocol-0 UNICODE).
pub(super) fn decode_raw_unicode_escape(l: &[u8]) -> String {
    let mut out = String::with_capacity(l.len());
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && i + 1 < l.len() && (l[i + 1] == b'u' || l[i + 1] == b'U') {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            if let Some(h) = l.get(i + 2..i + 2 + n) {
                if let Some(c) = std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                {
                    out.push(c);
                    i += 2 + n;
                    continue;
                }
            }
        }
        out.push(l[i] as char);
        i += 1;
    }
    out
}

/// The name of a pickle opcode, for error messages.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}
