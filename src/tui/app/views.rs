//! What an action does in each view: on a bead (start, close, edit, …), on the board (move,
//! fold, filter, sort), in the detail, the logs, the agents and the decisions panes.

use super::*;

impl App {
    /// The beads an edit on `id` applies to: the marked ones (on the board and the list),
    /// else `id`.
    pub(super) fn targets(&self, id: String) -> Vec<String> {
        if !self.marked.is_empty() && matches!(self.view, View::Board | View::List) {
            self.marked.iter().cloned().collect()
        } else {
            vec![id]
        }
    }

    /// Actions on a bead, from any view that has one selected.
    pub(super) fn bead_action(&mut self, action: Action, id: String) -> Vec<Command> {
        match action {
            Action::Open => self.open_detail(id),
            Action::Edit => {
                self.pending_edit = Some(id.clone());
                vec![Command::LoadDetail(id)]
            }
            Action::EditExternal => vec![Command::EditExternal(id)],
            Action::Priority => {
                self.overlay = Some(Overlay::Priority(self.targets(id)));
                Vec::new()
            }
            Action::Label => {
                self.overlay = Some(Overlay::Labels {
                    ids: self.targets(id),
                    input: LineInput::default(),
                });
                Vec::new()
            }
            Action::Status => {
                let items = crate::tui::forms::STATUSES
                    .iter()
                    .map(|s| PickItem {
                        id: (*s).to_owned(),
                        label: (*s).to_owned(),
                    })
                    .collect();
                let ids = self.targets(id);
                let title = format!("Status of {}", who(&ids));
                self.overlay = Some(Overlay::Status {
                    ids,
                    picker: Box::new(Picker::new("", items).asking(title, "set")),
                });
                Vec::new()
            }
            Action::Mark => {
                if !self.marked.remove(&id) {
                    self.marked.insert(id);
                }
                if matches!(self.view, View::Board) {
                    return self.board_action(Action::Down);
                }
                Vec::new()
            }
            Action::AddDependency => {
                let mut items = self.bead_items();
                items.retain(|c| c.id != id);
                self.overlay = Some(Overlay::Picker(Box::new(Picker::new(&id, items))));
                Vec::new()
            }
            Action::Close => {
                self.overlay = Some(Overlay::Close {
                    ids: self.targets(id),
                    reason: LineInput::default(),
                });
                Vec::new()
            }
            Action::Reopen => vec![Command::Mutate(Mutation::Reopen { id })],
            Action::Deps => {
                if self.view != View::Deps {
                    self.back = self.view;
                }
                self.view = View::Deps;
                self.deps = crate::tui::deps::DepsView {
                    root: id.clone(),
                    ..Default::default()
                };
                vec![Command::LoadDeps(id)]
            }
            Action::Work => {
                if self.view != View::Work {
                    self.back = self.view;
                }
                self.view = View::Work;
                self.work = crate::tui::work::WorkView::new(&id);
                vec![Command::LoadWork(id)]
            }
            Action::Pair => self.open_pair(id),
            Action::StartStop => {
                if self.live.running(&id) {
                    vec![Command::Stop(id)]
                } else {
                    vec![Command::Start(id)]
                }
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn board_action(&mut self, action: Action) -> Vec<Command> {
        let len = |app: &App, c: usize| app.board.column(Column::ALL[c]).len();
        match action {
            Action::Left | Action::Right => {
                let step: isize = if action == Action::Left { -1 } else { 1 };
                let mut next = self.col as isize + step;
                // Folded-away columns are stepped over.
                while (0..COLUMNS as isize).contains(&next)
                    && !self.board.shown(Column::ALL[next as usize])
                {
                    next += step;
                }
                if (0..COLUMNS as isize).contains(&next) {
                    self.col = next as usize;
                }
            }
            Action::Up => self.rows[self.col] = self.rows[self.col].saturating_sub(1),
            Action::Down => {
                if self.rows[self.col] + 1 < len(self, self.col) {
                    self.rows[self.col] += 1;
                }
            }
            Action::PageUp => self.rows[self.col] = self.rows[self.col].saturating_sub(5),
            Action::PageDown => {
                self.rows[self.col] =
                    (self.rows[self.col] + 5).min(len(self, self.col).saturating_sub(1))
            }
            Action::Top => self.rows[self.col] = 0,
            Action::Bottom => self.rows[self.col] = len(self, self.col).saturating_sub(1),
            Action::ToggleDone => {
                self.done_folded = !self.done_shut();
            }
            Action::New => {
                self.overlay = Some(Overlay::Form(Box::new(BeadForm::new_bead(self.known()))));
            }
            Action::Filter => {
                self.overlay = Some(Overlay::Filter(LineInput::new(&self.filter.text)));
            }
            Action::Sort => {
                self.filter.sort = self.filter.sort.next();
                self.say(true, format!("sorted by {}", self.filter.sort.name()));
                return vec![Command::SetFilter(self.filter.clone())];
            }
            Action::List => self.show_list(),
            Action::Back if !self.marked.is_empty() => {
                let n = self.marked.len();
                self.marked.clear();
                self.say(true, format!("unmarked {n}"));
            }
            Action::Back => {
                if !self.filter.is_empty() {
                    self.filter = Filter::default();
                    return vec![Command::SetFilter(Filter::default())];
                }
            }
            Action::Open if self.column() == Column::Done && self.done_shut() => {
                self.done_folded = false;
            }
            other => {
                if let Some(id) = self.selected().map(|c| c.id.clone()) {
                    self.remember();
                    return self.bead_action(other, id);
                }
            }
        }
        self.remember();
        Vec::new()
    }

    pub(super) fn detail_links(&self) -> Vec<String> {
        self.detail
            .detail
            .as_ref()
            .map(|d| {
                d.depends_on
                    .iter()
                    .chain(&d.dependents)
                    .map(|x| x.0.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn detail_action(&mut self, action: Action) -> Vec<Command> {
        let links = self.detail_links();
        match action {
            Action::Back => {
                self.view = self.back;
                Vec::new()
            }
            Action::Down => {
                if !links.is_empty() {
                    self.detail.link = (self.detail.link + 1).min(links.len() - 1);
                }
                Vec::new()
            }
            Action::Up => {
                self.detail.link = self.detail.link.saturating_sub(1);
                Vec::new()
            }
            Action::PageDown => {
                self.detail.scroll = self.detail.scroll.saturating_add(10);
                Vec::new()
            }
            Action::PageUp => {
                self.detail.scroll = self.detail.scroll.saturating_sub(10);
                Vec::new()
            }
            Action::Top => {
                self.detail.scroll = 0;
                Vec::new()
            }
            // Enter follows the selected dependency.
            Action::Open => match links.get(self.detail.link) {
                Some(id) => {
                    let id = id.clone();
                    self.open_detail(id)
                }
                None => Vec::new(),
            },
            other => {
                let id = self.detail.id.clone();
                self.bead_action(other, id)
            }
        }
    }

    pub(super) fn logs_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Up => self.logs.move_by(-1),
            Action::Down => self.logs.move_by(1),
            Action::PageUp => self.logs.move_by(-20),
            Action::PageDown => self.logs.move_by(20),
            Action::Top => self.logs.jump_to_start(),
            Action::Bottom => self.logs.jump_to_end(),
            Action::Open => self.logs.toggle(),
            Action::Search => {
                self.overlay = Some(Overlay::Search(LineInput::new(
                    self.logs.search.as_deref().unwrap_or(""),
                )));
            }
            Action::SearchNext => {
                let found = self.logs.search_next();
                self.say_if_not(found, "no match");
            }
            // `/` in the logs: all beads, or back to the selected one.
            Action::Filter => {
                self.logs.only = match self.logs.only {
                    Some(_) => None,
                    None => self.selected().map(|c| c.id.clone()),
                };
            }
            Action::Older => {
                let index = self.logs.run.as_ref().map_or(0, |r| r.index) + 1;
                return vec![Command::LoadRun {
                    index,
                    initial: false,
                }];
            }
            Action::Newer => match self.logs.run.as_ref().map(|r| r.index) {
                Some(i) if i > 1 => {
                    return vec![Command::LoadRun {
                        index: i - 1,
                        initial: false,
                    }];
                }
                Some(_) => self.unpark(),
                None => self.say(true, "this is the newest run"),
            },
            Action::Back if self.parked.is_some() => self.unpark(),
            Action::Back => self.view = View::Board,
            _ => {}
        }
        Vec::new()
    }

    /// The list: ↑/↓ move, `o` sorts by the next column, `O` reverses, `v` or `esc` back to
    /// the board (with the same bead selected); the rest acts on the selected bead.
    pub(super) fn list_action(&mut self, action: Action) -> Vec<Command> {
        let keep = self.selected().map(|c| c.id.clone());
        match action {
            Action::Up => self.list.move_by(-1),
            Action::Down => self.list.move_by(1),
            Action::PageUp => self.list.move_by(-20),
            Action::PageDown => self.list.move_by(20),
            Action::Top => self.list.row = 0,
            Action::Bottom => self.list.move_by(isize::MAX / 2),
            Action::Sort => {
                self.list.sort = self.list.sort.next();
                self.list.rebuild(&self.board, keep.as_deref());
                self.say(true, format!("sorted by {}", self.list.sort.name()));
            }
            Action::Reverse => {
                self.list.reversed = !self.list.reversed;
                self.list.rebuild(&self.board, keep.as_deref());
            }
            Action::Back if !self.marked.is_empty() => self.marked.clear(),
            Action::Back | Action::List => self.show_board(keep),
            Action::Filter => {
                self.overlay = Some(Overlay::Filter(LineInput::new(&self.filter.text)));
            }
            Action::Mark => {
                if let Some(id) = keep {
                    if !self.marked.remove(&id) {
                        self.marked.insert(id);
                    }
                    self.list.move_by(1);
                }
            }
            other => {
                if let Some(id) = keep {
                    return self.bead_action(other, id);
                }
            }
        }
        Vec::new()
    }

    /// Opens the list on the board's beads, the board's bead selected.
    pub(super) fn show_list(&mut self) {
        let keep = self.selected().map(|c| c.id.clone());
        self.view = View::List;
        let board = Arc::clone(&self.board);
        self.list.rebuild(&board, keep.as_deref());
    }

    /// Back to the board, on bead `keep`.
    fn show_board(&mut self, keep: Option<String>) {
        self.view = View::Board;
        if let Some(id) = keep {
            self.selected_id = Some(id);
            self.reselect();
        }
    }

    /// The dependency view: ↑/↓ choose a line, enter re-roots the view on it, `o` opens its
    /// detail; the rest acts on the chosen bead.
    pub(super) fn deps_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Back => self.view = self.back,
            Action::Up => self.deps.move_by(-1),
            Action::Down => self.deps.move_by(1),
            Action::PageUp => self.deps.move_by(-20),
            Action::PageDown => self.deps.move_by(20),
            Action::Top => self.deps.row = 0,
            Action::Bottom => self.deps.move_by(isize::MAX / 2),
            Action::Open => {
                if let Some(id) = self.deps.selected().map(str::to_owned)
                    && id != self.deps.root
                {
                    return self.bead_action(Action::Deps, id);
                }
            }
            other => {
                if let Some(id) = self.deps.selected().map(str::to_owned) {
                    return self.bead_action(other, id);
                }
            }
        }
        Vec::new()
    }

    /// The Work view: ←/→ (tab) switch diff, tests and transcript; `[`/`]` the file; ↑/↓
    /// scroll (or select a step); enter unfolds a tool call.
    pub(super) fn work_action(&mut self, action: Action) -> Vec<Command> {
        let w = &mut self.work;
        match action {
            Action::Back => self.view = self.back,
            Action::Left => w.switch(false),
            Action::Right => w.switch(true),
            Action::Older => w.next_file(false),
            Action::Newer => w.next_file(true),
            Action::Up => w.scroll_by(-1),
            Action::Down => w.scroll_by(1),
            Action::PageUp => w.scroll_by(-20),
            Action::PageDown => w.scroll_by(20),
            Action::Top => w.to_end(false),
            Action::Bottom => w.to_end(true),
            Action::Open => w.toggle(),
            other => {
                let id = w.id.clone();
                return self.bead_action(other, id);
            }
        }
        Vec::new()
    }

    /// The log the orchestrator's events go to (the parked live one while a past run shows).
    pub(super) fn live_logs(&mut self) -> &mut Logs {
        match self.parked.as_mut() {
            Some(l) => l,
            None => &mut self.logs,
        }
    }

    /// Back from a past run to the live log.
    fn unpark(&mut self) {
        if let Some(live) = self.parked.take() {
            let only = self.logs.only.take();
            self.logs = live;
            self.logs.only = only;
        }
    }

    /// Shows a run read back: the last one fills an empty log when the window opens; an
    /// older one replaces the view until `]` or `esc` (the live log is parked meanwhile).
    pub(super) fn past_run(&mut self, run: crate::tui::worker::PastRun) {
        let only = self.logs.only.clone();
        let mut past = Logs::replayed(&run.events);
        past.only = only;
        if run.index == 0 {
            if self.parked.is_none() && self.logs.entries.is_empty() {
                self.logs = past;
            }
            return;
        }
        past.run = Some(crate::tui::logs::RunLabel {
            index: run.index,
            total: run.total,
            started: run.started,
        });
        if self.parked.is_none() {
            self.parked = Some(std::mem::replace(&mut self.logs, past));
        } else {
            self.logs = past;
        }
    }

    /// The usage view: ←/→ group by agent, bead or model; ↑/↓ choose a row; enter opens the
    /// bead of a bead row.
    pub(super) fn usage_action(&mut self, action: Action) -> Vec<Command> {
        let n = crate::tui::ui::usage::rows(&self.live, self.usage_group).len();
        match action {
            Action::Back => self.view = View::Board,
            Action::Left | Action::Right => {
                self.usage_group = self.usage_group.step(action == Action::Right);
                self.usage_row = 0;
            }
            Action::Up => self.usage_row = self.usage_row.saturating_sub(1),
            Action::Down => self.usage_row = (self.usage_row + 1).min(n.saturating_sub(1)),
            Action::Open if self.usage_group == UsageGroup::Bead => {
                let rows = crate::tui::ui::usage::rows(&self.live, self.usage_group);
                if let Some((id, ..)) = rows.get(self.usage_row) {
                    let id = (*id).clone();
                    return self.open_detail(id);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn agents_action(&mut self, action: Action) -> Vec<Command> {
        let n = self.live.agents.len();
        match action {
            Action::Up => self.agents_row = self.agents_row.saturating_sub(1),
            Action::Down => self.agents_row = (self.agents_row + 1).min(n.saturating_sub(1)),
            Action::Back => self.view = View::Board,
            Action::StartStop | Action::Open => {
                if let Some(id) = self.live.agents.keys().nth(self.agents_row).cloned() {
                    return self.bead_action(action, id);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn decisions_action(&mut self, action: Action) -> Vec<Command> {
        let n = self.board.decisions.len();
        let id = self
            .board
            .decisions
            .get(self.decisions_row)
            .map(|d| d.id.clone());
        match (action, id) {
            (Action::Up, _) => self.decisions_row = self.decisions_row.saturating_sub(1),
            (Action::Down, _) => {
                self.decisions_row = (self.decisions_row + 1).min(n.saturating_sub(1))
            }
            (Action::Back, _) => self.view = View::Board,
            (Action::Approve, Some(id)) => {
                return vec![Command::Decide {
                    id,
                    verdict: Verdict::Approve,
                }];
            }
            (Action::Deny, Some(id)) => {
                return vec![Command::Decide {
                    id,
                    verdict: Verdict::Deny,
                }];
            }
            (Action::Answer, Some(decision)) => {
                self.overlay = Some(Overlay::Answer {
                    decision,
                    text: LineInput::default(),
                });
            }
            (Action::Open, Some(id)) => return self.open_detail(id),
            _ => {}
        }
        Vec::new()
    }
}
