//! Refuses a PyTorch file whose pickle asks for anything a state dict never needs.
//!
//! Burn's reader executes nothing (an unknown call stays an opaque value), but a file that asks
//! for `os.system` or `builtins.eval` is hostile or not weights at all, and loading it without a
//! word would hide that. `torch.load(weights_only=True)`, PyTorch's default since 2.6, refuses
//! such files; this check does the same with the same idea: every global the pickle names must
//! be one that rebuilds tensors, storages, dtypes or the dictionaries that hold them.

use std::io::Read;
use std::path::Path;

/// The globals a state dict's pickle may name (`torch.serialization`'s weights-only
/// allowlist, narrowed to what tensors and their containers need).
fn allowed(module: &str, name: &str) -> bool {
    match module {
        "collections" => matches!(name, "OrderedDict"),
        "builtins" | "__builtin__" => matches!(name, "set" | "frozenset"),
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_tensor_v3"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => {
            name.ends_with("Storage")
                || name == "Size"
                || name == "Tensor"
                || matches!(
                    name,
                    "float16"
                        | "float32"
                        | "float64"
                        | "bfloat16"
                        | "half"
                        | "float"
                        | "double"
                        | "uint8"
                        | "int8"
                        | "int16"
                        | "int32"
                        | "int64"
                        | "bool"
                )
        }
        "torch.nn.parameter" => name == "Parameter",
        _ => false,
    }
}

/// Pickles in a legacy (pre-1.6) PyTorch file before its raw storage bytes: the magic number,
/// the protocol, the system information, the object and the storage keys.
const LEGACY_PICKLES: usize = 5;

/// The pickle inside a PyTorch file, with how many pickle streams to read from it:
/// `<archive>/data.pkl` of the zip format (PyTorch ≥ 1.6), or the legacy format's leading
/// pickles.
fn pickle_bytes(path: &Path) -> Result<(Vec<u8>, Option<usize>), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if !bytes.starts_with(b"PK") {
        return Ok((bytes, Some(LEGACY_PICKLES)));
    }
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|name| name.ends_with("/data.pkl") || name == "data.pkl")
        .map(|name| name.into_owned())
        .ok_or("no data.pkl in the archive")?;
    let mut pickle = Vec::new();
    archive
        .by_name(&name)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut pickle)
        .map_err(|e| e.to_string())?;
    Ok((pickle, None))
}

/// The `n` bytes at `*at`, moving past them.
fn take<'a>(pickle: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|end| *end <= pickle.len())
        .ok_or_else(|| format!("the pickle ends inside an opcode's argument at byte {at}"))?;
    let slice = &pickle[*at..end];
    *at = end;
    Ok(slice)
}

/// The newline-terminated text at `*at`, moving past it.
fn line(pickle: &[u8], at: &mut usize) -> Result<String, String> {
    let rest = &pickle[*at..];
    let length = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("the pickle ends inside a text argument")?;
    let text = String::from_utf8_lossy(&rest[..length]).into_owned();
    *at += length + 1;
    Ok(text)
}

/// A little-endian unsigned integer.
fn uint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// Every `module.name` global the first `pickles` pickle streams name (all of them with
/// `None`), in order. Walks the opcodes without building objects: strings are followed
/// (pushed, memoised, fetched) only as far as `STACK_GLOBAL` needs its two operands.
pub(crate) fn globals(pickle: &[u8], pickles: Option<usize>) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut stops = 0;
    let mut at = 0usize;
    // The last two values pushed, where they were strings (STACK_GLOBAL's operands).
    let mut recent: [Option<String>; 2] = [None, None];
    let mut memo: std::collections::HashMap<u64, Option<String>> = Default::default();
    let push = |recent: &mut [Option<String>; 2], value: Option<String>| {
        recent[0] = recent[1].take();
        recent[1] = value;
    };
    while at < pickle.len() {
        let opcode = pickle[at];
        at += 1;
        match opcode {
            b'.' => {
                // STOP: the legacy format holds several pickles in a row, then raw storage.
                stops += 1;
                if Some(stops) == pickles {
                    break;
                }
                recent = [None, None];
            }
            // Text arguments.
            b'I' | b'L' | b'F' | b'P' => {
                line(pickle, &mut at)?;
                push(&mut recent, None);
            }
            b'S' | b'V' => {
                let text = line(pickle, &mut at)?;
                push(&mut recent, Some(text));
            }
            b'g' => {
                let key = line(pickle, &mut at)?
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(u64::MAX);
                push(&mut recent, memo.get(&key).cloned().flatten());
            }
            b'p' => {
                let key = line(pickle, &mut at)?
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(u64::MAX);
                memo.insert(key, recent[1].clone());
            }
            b'c' | b'i' => {
                let module = line(pickle, &mut at)?;
                let name = line(pickle, &mut at)?;
                found.push(format!("{module}.{name}"));
                push(&mut recent, None);
            }
            b'\x93' => {
                let [module, name] = std::mem::take(&mut recent);
                found.push(format!(
                    "{}.{}",
                    module.unwrap_or_else(|| "?".into()),
                    name.unwrap_or_else(|| "?".into())
                ));
            }
            // Strings with a length prefix.
            b'T' | b'X' | b'\x8c' | b'\x8d' => {
                let width = match opcode {
                    b'\x8c' => 1,
                    b'\x8d' => 8,
                    _ => 4,
                };
                let length = uint(take(pickle, &mut at, width)?);
                let length = usize::try_from(length).map_err(|_| "a string too long")?;
                let text = String::from_utf8_lossy(take(pickle, &mut at, length)?).into_owned();
                push(&mut recent, Some(text));
            }
            b'U' => {
                let length = usize::from(take(pickle, &mut at, 1)?[0]);
                let text = String::from_utf8_lossy(take(pickle, &mut at, length)?).into_owned();
                push(&mut recent, Some(text));
            }
            // Bytes and longs with a length prefix.
            b'B' | b'C' | b'\x8e' | b'\x96' | b'\x8a' | b'\x8b' => {
                let width = match opcode {
                    b'C' | b'\x8a' => 1,
                    b'\x8e' | b'\x96' => 8,
                    _ => 4,
                };
                let length = uint(take(pickle, &mut at, width)?);
                let length = usize::try_from(length).map_err(|_| "a byte string too long")?;
                take(pickle, &mut at, length)?;
                push(&mut recent, None);
            }
            // Memo: store and fetch.
            b'q' | b'r' => {
                let key = uint(take(pickle, &mut at, if opcode == b'q' { 1 } else { 4 })?);
                memo.insert(key, recent[1].clone());
            }
            b'\x94' => {
                let key = memo.len() as u64;
                memo.insert(key, recent[1].clone());
            }
            b'h' | b'j' => {
                let key = uint(take(pickle, &mut at, if opcode == b'h' { 1 } else { 4 })?);
                push(&mut recent, memo.get(&key).cloned().flatten());
            }
            // Fixed-size arguments.
            b'K' | b'\x82' => {
                take(pickle, &mut at, 1)?;
                push(&mut recent, None);
            }
            b'M' | b'\x83' => {
                take(pickle, &mut at, 2)?;
                push(&mut recent, None);
            }
            b'J' | b'\x84' => {
                take(pickle, &mut at, 4)?;
                push(&mut recent, None);
            }
            b'G' => {
                take(pickle, &mut at, 8)?;
                push(&mut recent, None);
            }
            b'\x80' => {
                take(pickle, &mut at, 1)?;
            }
            b'\x95' => {
                take(pickle, &mut at, 8)?;
            }
            // No argument.
            b'N' | b'\x88' | b'\x89' | b']' | b')' | b'}' | b'\x8f' | b'(' | b'a' | b'e' | b'l'
            | b't' | b'\x85' | b'\x86' | b'\x87' | b'd' | b's' | b'u' | b'\x90' | b'\x91'
            | b'0' | b'1' | b'2' | b'R' | b'b' | b'o' | b'\x81' | b'\x92' | b'Q' | b'\x97'
            | b'\x98' => {
                push(&mut recent, None);
            }
            other => {
                return Err(format!(
                    "unknown pickle opcode 0x{other:02x} at byte {}",
                    at - 1
                ));
            }
        }
    }
    Ok(found)
}

/// Checks the PyTorch file at `path`: an error names the first global a state dict never
/// needs, or says why the pickle could not be read.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let (pickle, pickles) = pickle_bytes(path)?;
    for global in globals(&pickle, pickles)? {
        let (module, name) = global.rsplit_once('.').unwrap_or(("", &global));
        if !allowed(module, name) {
            return Err(format!(
                "refused: its pickle asks for `{global}`, which a state dict never needs (a \
                 hostile file, or not weights; torch.load(weights_only=True) refuses it too). \
                 Nothing in it was run"
            ));
        }
    }
    Ok(())
}
