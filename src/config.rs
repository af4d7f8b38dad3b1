//! `BotSpec`: bot YAML -> raw file struct (`deny_unknown_fields`) -> validated spec.
