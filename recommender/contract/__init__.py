"""The contract between the nightly job and serving: the published lists (slots, pointer,
history) and the run manifests, read by serving, the API and the lifecycle."""
