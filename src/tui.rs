//! Terminal front end (The Elm Architecture: `App`, `Msg`, `update`, `view`).
