//! The NumPy .npz problem reader, then the solve of what it accepts.
#![no_main]

use altdiff_examples::npz_file::parse_npz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(qp) = parse_npz(std::io::Cursor::new(data), "fuzz.npz".as_ref()) {
        altdiff_fuzz::exercise(&qp, data.len() as u8);
    }
});
