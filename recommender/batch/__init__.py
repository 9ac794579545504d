"""The nightly batch: chunked scoring, the Ray/local engines, the chunk writer, run manifests,
blue/green publication and the run lock. Scoring is pure; the rest does Redis/file I/O."""
