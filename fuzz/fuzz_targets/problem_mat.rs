//! The MAT-file reader (level 5: header, tags, compressed elements, sparse and dense
//! arrays, the Maros-Meszaros layout), then the solve of what it accepts.
#![no_main]

use altdiff_examples::maros::parse_maros;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(problem) = parse_maros("fuzz", "fuzz.mat".as_ref(), data) {
        altdiff_fuzz::exercise(&problem.qp, data.len() as u8);
    }
});
