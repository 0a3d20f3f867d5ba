"""The Tencent contract in one place: commands, messages, validation, error codes."""
