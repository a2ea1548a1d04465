//! A pickle virtual machine that never executes anything.
//!
//! Opcodes of protocols 0-5 build an arena of inert nodes; GLOBAL only resolves names on an
//! allow-list (everything else is refused with [`PickleError::ForbiddenGlobal`]), and
//! "calling" an allowed global builds a node in Rust (see `pickle_calls.rs`). The arena is
//! converted to a tree of [`Value`]s at the end, with a depth limit and a size budget, so a
//! hostile pickle can neither recurse without bound nor make rift allocate without bound.

use std::collections::HashMap;

pub use super::error::PickleError;
pub use super::pickle_text::opcode_name;
use super::pickle_text::{decode_raw_unicode_escape, decode_string_literal, parse_decimal};
pub use super::pickle_vm::Value;
use super::pickle_vm::{default_budget, NoStorages, Node, PidMode, Vm, V};

/// Unpickles a self-contained pickle (no persistent ids), e.g. a CIFAR python batch.
pub fn parse_plain_pickle(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut vm = Vm::new(bytes, 0, PidMode::Forbidden);
    let root = vm.run()?;
    let mut budget = default_budget(bytes.len());
    vm.to_value(root, &mut NoStorages, &mut budget)
}

/// Unpickles the plain pickle starting at `start`; returns it and the offset just past STOP.
pub fn parse_plain_pickle_at(bytes: &[u8], start: usize) -> Result<(Value, usize), PickleError> {
    let mut vm = Vm::new(bytes, start, PidMode::Forbidden);
    let root = vm.run()?;
    let mut budget = default_budget(bytes.len());
    Ok((vm.to_value(root, &mut NoStorages, &mut budget)?, vm.pos))
}

impl<'a> Vm<'a> {
    pub(super) fn new(data: &'a [u8], start: usize, pid_mode: PidMode) -> Self {
        Vm {
            data,
            pos: start,
            arena: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            pid_mode,
            work_left: default_budget(data.len()),
            storages: Vec::new(),
            op_offset: start,
            op_name: "",
        }
    }

    pub(super) fn corrupt(&self, detail: impl Into<String>) -> PickleError {
        PickleError::Corrupt {
            opcode: self.op_name.to_string(),
            offset: self.op_offset,
            detail: detail.into(),
        }
    }

    pub(super) fn charge(&mut self, units: usize) -> Result<(), PickleError> {
        if units > self.work_left {
            return Err(PickleError::TooLarge {
                detail: format!("opcode {} at byte {}", self.op_name, self.op_offset),
            });
        }
        self.work_left -= units;
        Ok(())
    }

    pub(super) fn alloc(&mut self, n: Node) -> V {
        self.arena.push(n);
        V::Ref(self.arena.len() - 1)
    }

    pub(super) fn node(&self, v: V) -> Option<&Node> {
        match v {
            V::Ref(i) => self.arena.get(i),
            _ => None,
        }
    }

    fn push(&mut self, v: V) {
        self.stack.push(v);
    }
    pub(super) fn pop(&mut self) -> Result<V, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.corrupt("the stack is empty"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.corrupt("the stack is empty"))
    }
    fn top(&self) -> Result<V, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.corrupt("the stack is empty"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.corrupt("the stack is empty"))
    }
    fn pop_mark(&mut self) -> Result<Vec<V>, PickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.corrupt("no MARK on the stack"))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }
    fn memo_get(&self, k: u64) -> Result<V, PickleError> {
        self.memo
            .get(&k)
            .copied()
            .ok_or_else(|| self.corrupt(format!("memo entry {k} was never stored")))
    }
    fn memo_put(&mut self, k: u64) -> Result<(), PickleError> {
        let v = self.top()?;
        self.memo.insert(k, v);
        Ok(())
    }
    /// Runs until STOP; returns the result. `self.pos` is then just past STOP.
    pub(super) fn run(&mut self) -> Result<V, PickleError> {
        loop {
            self.op_offset = self.pos;
            let Some(&op) = self.data.get(self.pos) else {
                return Err(PickleError::NoStop {
                    len: self.data.len(),
                });
            };
            self.pos += 1;
            self.op_name = opcode_name(op);
            self.charge(1)?;
            match op {
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    return Ok(v);
                }
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(PickleError::Unsupported { detail: format!("pickle protocol {p} (rift reads 0-5)") });
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: frames are just a hint for buffering
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.marks.last().copied() == Some(self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.push(v)
                }
                b'N' => self.push(V::None),
                0x88 => self.push(V::Bool(true)),
                0x89 => self.push(V::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(V::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(V::Int(v as i64))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(V::Int(v as i64))
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.long_from_le(b);
                    self.push(v)
                }
                0x8b => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.charge(n)?;
                    let v = self.long_from_le(b);
                    self.push(v)
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(V::Float(f64::from_be_bytes(a)))
                }
                b'I' => {
                    let l = self.line()?;
                    let v = match l {
                        b"01" => V::Bool(true),
                        b"00" => V::Bool(false),
                        _ => {
                            let s = std::str::from_utf8(l).map_err(|_| self.corrupt("not a number"))?;
                            match s.trim().parse::<i64>() {
                                Ok(i) => V::Int(i),
                                Err(_) => self.alloc(Node::BigInt(s.trim().to_string())),
                            }
                        }
                    };
                    self.push(v)
                }
                b'L' => {
                    let l = self.line()?;
                    let s = std::str::from_utf8(l).map_err(|_| self.corrupt("not a number"))?;
                    let s = s.trim().trim_end_matches('L');
                    let v = match s.parse::<i64>() {
                        Ok(i) => V::Int(i),
                        Err(_) => {
                            if s.is_empty() || !s.trim_start_matches('-').bytes().all(|c| c.is_ascii_digit()) {
                                return Err(self.corrupt("not a number"));
                            }
                            self.alloc(Node::BigInt(s.to_string()))
                        }
                    };
                    self.push(v)
                }
                b'F' => {
                    let l = self.line()?;
                    let s = std::str::from_utf8(l).map_err(|_| self.corrupt("not a number"))?;
                    let f = s.trim().parse::<f64>().map_err(|_| self.corrupt("not a number"))?;
                    self.push(V::Float(f))
                }
                b'S' => {
                    let l = self.line()?;
                    let b = decode_string_literal(l).ok_or_else(|| self.corrupt("bad string literal"))?;
                    let v = self.bytes_node(&b)?;
                    self.push(v)
                }
                b'V' => {
                    let l = self.line()?;
                    let s = decode_raw_unicode_escape(l);
                    self.charge(s.len())?;
                    let v = self.alloc(Node::Str(s));
                    self.push(v)
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return Err(self.corrupt("negative length"));
                    }
                    let b = self.take(n as usize)?;
                    let v = self.bytes_node(b)?;
                    self.push(v)
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.bytes_node(b)?;
                    self.push(v)
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let v = self.bytes_node(b)?;
                    self.push(v)
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    let v = self.bytes_node(b)?;
                    self.push(v)
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let v = self.str_node(b)?;
                    self.push(v)
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.str_node(b)?;
                    self.push(v)
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    let v = self.str_node(b)?;
                    self.push(v)
                }
                b')' => {
                    let v = self.alloc(Node::Tuple(Vec::new()));
                    self.push(v)
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::Tuple(items));
                    self.push(v)
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.alloc(Node::Tuple(items));
                    self.push(v)
                }
                b']' => {
                    let v = self.alloc(Node::List(Vec::new()));
                    self.push(v)
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::List(items));
                    self.push(v)
                }
                b'}' => {
                    let v = self.alloc(Node::Dict(Vec::new()));
                    self.push(v)
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.corrupt("odd number of items for a dict"));
                    }
                    let pairs = items.chunks_exact(2).map(|c| (c[0], c[1])).collect();
                    let v = self.alloc(Node::Dict(pairs));
                    self.push(v)
                }
                0x8f => {
                    let v = self.alloc(Node::Set { items: Vec::new(), frozen: false });
                    self.push(v)
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::Set { items, frozen: true });
                    self.push(v)
                }
                b'a' => {
                    let item = self.pop()?;
                    let target = self.top()?;
                    self.extend_list(target, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.extend_list(target, items)?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    match target {
                        V::Ref(i) => match self.arena.get_mut(i) {
                            Some(Node::Set { items: s, .. }) => s.extend(items),
                            _ => return Err(self.corrupt("ADDITEMS target is not a set")),
                        },
                        _ => return Err(self.corrupt("ADDITEMS target is not a set")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.corrupt("odd number of items for SETITEMS"));
                    }
                    let target = self.top()?;
                    self.set_items(target, items)?;
                }
                b'g' => {
                    let l = self.line()?;
                    let k = parse_decimal(l).ok_or_else(|| self.corrupt("bad memo index"))?;
                    let v = self.memo_get(k)?;
                    self.push(v)
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    let v = self.memo_get(k)?;
                    self.push(v)
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    let v = self.memo_get(k)?;
                    self.push(v)
                }
                b'p' => {
                    let l = self.line()?;
                    let k = parse_decimal(l).ok_or_else(|| self.corrupt("bad memo index"))?;
                    self.memo_put(k)?
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let module = String::from_utf8_lossy(module).into_owned();
                    let name = String::from_utf8_lossy(name).into_owned();
                    let v = self.global(&module, &name)?;
                    self.push(v)
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(Node::Str(m)), Some(Node::Str(n))) = (self.node(module), self.node(name)) else {
                        return Err(self.corrupt("STACK_GLOBAL needs two strings"));
                    };
                    let (m, n) = (m.clone(), n.clone());
                    let v = self.global(&m, &n)?;
                    self.push(v)
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = self.tuple_items(args)?;
                    let v = self.call(func, args, None)?;
                    self.push(v)
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = self.tuple_items(args)?;
                    let v = self.call(func, args, Some(kwargs))?;
                    self.push(v)
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    self.build(obj, state)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.push(v)
                }
                b'P' => {
                    let l = self.line()?;
                    let pid = self.str_node(l)?;
                    let v = self.persistent_load(pid)?;
                    self.push(v)
                }
                0x98 => {
                    self.top()?; // READONLY_BUFFER: no-op on an in-band buffer
                }
                0x97 => {
                    return Err(PickleError::Unsupported {
                        detail: format!("out-of-band buffer (NEXT_BUFFER) at byte {}", self.op_offset),
                    })
                }
                b'i' | b'o' | 0x82..=0x84 => {
                    return Err(PickleError::Unsupported {
                        detail: format!("opcode {} at byte {} (class instances of protocol 0/1 or the extension registry)", self.op_name, self.op_offset),
                    })
                }
                _ => return Err(PickleError::UnknownOpcode { opcode: op, offset: self.op_offset }),
            }
        }
    }
}
