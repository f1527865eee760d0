//! Reading a scenario file: bounded in size before anything is parsed, and UTF-8.

use std::io::Read;
use std::path::Path;

use super::ScenarioError;

/// Scenario files are refused above this size, before parsing: the TOML parser holds many
/// times a file's size in memory (a 20 MB file took 769 MB). Exported fuzz seeds are a few
/// hundred KB, and 20,000 steps (`STEPS_MAX`) of a client operation each fit in about 3 MB.
pub const SCENARIO_BYTES_MAX: usize = 4 << 20;

/// Read a scenario file: at most [`SCENARIO_BYTES_MAX`] bytes (a device or a pipe that never
/// ends is refused too), as UTF-8.
pub fn read_source(path: &Path) -> Result<String, ScenarioError> {
    let file = path.display().to_string();
    let whole = |message: String| ScenarioError { file: file.clone(), line: 0, field: "file".into(), message };
    let opened = std::fs::File::open(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if let Ok(meta) = opened.metadata() {
        if meta.is_file() && meta.len() > SCENARIO_BYTES_MAX as u64 {
            return Err(whole(too_big(&meta.len().to_string())));
        }
    }
    let mut bytes = Vec::new();
    opened
        .take(SCENARIO_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole(format!("cannot read: {e}")))?;
    if bytes.len() > SCENARIO_BYTES_MAX {
        return Err(whole(too_big(&format!("more than {SCENARIO_BYTES_MAX}"))));
    }
    utf8(&file, bytes)
}

fn too_big(size: &str) -> String {
    format!("the file is {size} bytes; scenario files are at most {SCENARIO_BYTES_MAX} bytes (4 MiB)")
}

/// The text of `bytes`, or an error naming the line and byte offset of the first byte that
/// is not UTF-8.
pub(crate) fn utf8(file: &str, bytes: Vec<u8>) -> Result<String, ScenarioError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        ScenarioError {
            file: file.to_string(),
            line,
            field: "file".into(),
            message: format!("not UTF-8: byte 0x{:02x} at byte offset {offset}", bytes[offset]),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_that_is_not_utf8_is_named_with_its_line_and_offset() {
        let e = utf8("x.toml", b"name = \"a\"\nseed = \xff1\n".to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "x.toml:2: file: not UTF-8: byte 0xff at byte offset 18");
    }

    #[test]
    fn an_endless_device_is_refused_by_size() {
        let e = read_source(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("more than 4194304 bytes"), "{e}");
    }
}
