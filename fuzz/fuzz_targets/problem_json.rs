//! The JSON problem reader, then the solve of what it accepts.
#![no_main]

use altdiff_examples::problem_file::ProblemFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = ProblemFile::parse(text, "fuzz.json".as_ref())
        && let Ok(qp) = file.to_host()
    {
        altdiff_fuzz::exercise(&qp, data.len() as u8);
    }
});
