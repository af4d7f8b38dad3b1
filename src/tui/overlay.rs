//! Keys while an overlay is open: help (any key closes), the session list (open, new, rename,
//! delete with confirmation) and the persona picker.

use super::app::{App, Command, ListMode, Overlay};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Handle `key` with an overlay open (Ctrl+C, which quits from anywhere, is handled before).
pub fn key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let busy = app.status.busy();
    match &mut app.overlay {
        Overlay::None => Vec::new(),
        Overlay::Help => {
            app.overlay = Overlay::None;
            Vec::new()
        }
        Overlay::Personas { items, selected } => match key.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                app.overlay = Overlay::None;
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                *selected = selected.saturating_sub(1);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                *selected = (*selected + 1).min(items.len().saturating_sub(1));
                Vec::new()
            }
            KeyCode::Enter => {
                let Some(id) = items.get(*selected).cloned() else {
                    return Vec::new();
                };
                if busy {
                    app.notice = Some("a reply is running; press Esc to stop it first".into());
                    return Vec::new();
                }
                app.overlay = Overlay::None;
                vec![Command::SwitchPersona(id)]
            }
            _ => Vec::new(),
        },
        Overlay::Sessions {
            items,
            selected,
            mode,
        } => {
            let current = items.get(*selected).map(|s| (s.id, s.name.clone()));
            match mode {
                ListMode::Rename(name) => match key.code {
                    KeyCode::Esc => {
                        *mode = ListMode::Browse;
                        Vec::new()
                    }
                    KeyCode::Enter => {
                        let name = name.trim().to_string();
                        *mode = ListMode::Browse;
                        match current {
                            Some((id, _)) if !name.is_empty() => {
                                vec![Command::RenameSession { id, name }]
                            }
                            _ => Vec::new(),
                        }
                    }
                    KeyCode::Backspace => {
                        name.pop();
                        Vec::new()
                    }
                    KeyCode::Char(c) if !ctrl => {
                        name.push(c);
                        Vec::new()
                    }
                    _ => Vec::new(),
                },
                ListMode::ConfirmDelete => {
                    *mode = ListMode::Browse;
                    match (key.code, current) {
                        (KeyCode::Char('y' | 'Y'), Some((id, _))) => {
                            vec![Command::DeleteSession(id)]
                        }
                        _ => {
                            app.notice = Some("nothing deleted".into());
                            Vec::new()
                        }
                    }
                }
                ListMode::Browse => match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::F(2) => {
                        app.overlay = Overlay::None;
                        Vec::new()
                    }
                    KeyCode::Char('o') if ctrl => {
                        app.overlay = Overlay::None;
                        Vec::new()
                    }
                    KeyCode::Up | KeyCode::Char('k') => {
                        *selected = selected.saturating_sub(1);
                        Vec::new()
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        *selected = (*selected + 1).min(items.len().saturating_sub(1));
                        Vec::new()
                    }
                    KeyCode::Char('r') => {
                        if let Some((_, name)) = current {
                            *mode = ListMode::Rename(name);
                        }
                        Vec::new()
                    }
                    KeyCode::Char('d') | KeyCode::Delete => {
                        if current.is_some() {
                            *mode = ListMode::ConfirmDelete;
                        }
                        Vec::new()
                    }
                    KeyCode::Char('n') => {
                        session_change(app, busy, Command::NewSession { name: None })
                    }
                    KeyCode::Enter => match current {
                        Some((id, _)) => session_change(app, busy, Command::OpenSession(id)),
                        None => Vec::new(),
                    },
                    _ => Vec::new(),
                },
            }
        }
    }
}

fn session_change(app: &mut App, busy: bool, cmd: Command) -> Vec<Command> {
    if busy {
        app.notice = Some("a reply is running; press Esc to stop it first".into());
        return Vec::new();
    }
    app.overlay = Overlay::None;
    vec![cmd]
}
