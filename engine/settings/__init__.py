"""Settings and remembered state: config (TOML + env + CLI), locations, state.json, holdings."""
