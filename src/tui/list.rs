//! The dense list (`v`): every bead on the board, one row each, in a table sorted by the
//! column `o` picks (priority, id, status, title, assignee, updated, created; `O` reverses).
//! Pure: the order is a list of positions into the board, rebuilt when the board or the sort
//! changes, and the selection follows its bead across rebuilds.

use std::cmp::Ordering;

use super::model::{Board, COLUMNS, Card, Column};

/// What the list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListSort {
    /// The board's order: column by column (ready first), each as the board sorts it.
    #[default]
    Board,
    Priority,
    Id,
    Status,
    Title,
    Assignee,
    /// Most recently updated first.
    Updated,
    /// Newest first.
    Created,
}

impl ListSort {
    pub const ALL: [ListSort; 8] = [
        ListSort::Board,
        ListSort::Priority,
        ListSort::Id,
        ListSort::Status,
        ListSort::Title,
        ListSort::Assignee,
        ListSort::Updated,
        ListSort::Created,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ListSort::Board => "board",
            ListSort::Priority => "priority",
            ListSort::Id => "id",
            ListSort::Status => "status",
            ListSort::Title => "title",
            ListSort::Assignee => "assignee",
            ListSort::Updated => "updated",
            ListSort::Created => "created",
        }
    }

    pub fn next(self) -> ListSort {
        super::step_in(&ListSort::ALL, self, true)
    }

    fn compare(self, a: &Card, b: &Card) -> Ordering {
        match self {
            ListSort::Board => Ordering::Equal,
            ListSort::Priority => a.priority.cmp(&b.priority),
            ListSort::Id => a.id.cmp(&b.id),
            ListSort::Status => a.status.cmp(&b.status),
            ListSort::Title => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
            // Unassigned last.
            ListSort::Assignee => match (&a.assignee, &b.assignee) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            ListSort::Updated => b.updated.cmp(&a.updated),
            ListSort::Created => b.created.cmp(&a.created),
        }
    }
}

/// The list's state.
#[derive(Clone, Debug, Default)]
pub struct ListView {
    pub sort: ListSort,
    pub reversed: bool,
    /// (column, card) positions into the board, in the list's order.
    pub order: Vec<(u8, u32)>,
    pub row: usize,
}

impl ListView {
    /// Orders `board`'s cards; the selection stays on `keep` if it is still there.
    pub fn rebuild(&mut self, board: &Board, keep: Option<&str>) {
        let mut order: Vec<(u8, u32)> =
            Vec::with_capacity(board.columns.iter().map(Vec::len).sum());
        for c in Column::ALL {
            if !board.shown(c) {
                continue;
            }
            let n = board.column(c).len();
            order.extend((0..n).map(|i| (c.index() as u8, i as u32)));
        }
        let card = |&(c, i): &(u8, u32)| -> Option<&Card> {
            board.columns.get(c as usize)?.get(i as usize)
        };
        if self.sort != ListSort::Board {
            let sort = self.sort;
            order.sort_by(|x, y| match (card(x), card(y)) {
                (Some(a), Some(b)) => sort.compare(a, b).then_with(|| a.id.cmp(&b.id)),
                _ => Ordering::Equal,
            });
        }
        if self.reversed {
            order.reverse();
        }
        self.order = order;
        self.row = keep
            .and_then(|id| {
                self.order
                    .iter()
                    .position(|p| card(p).is_some_and(|c| c.id == id))
            })
            .unwrap_or(self.row)
            .min(self.order.len().saturating_sub(1));
    }

    /// The card in row `row`.
    pub fn card<'a>(&self, board: &'a Board, row: usize) -> Option<&'a Card> {
        let (c, i) = *self.order.get(row)?;
        if c as usize >= COLUMNS {
            return None;
        }
        board.columns[c as usize].get(i as usize)
    }

    /// The column the card in `row` is in.
    pub fn column(&self, row: usize) -> Option<Column> {
        let (c, _) = *self.order.get(row)?;
        Column::ALL.get(c as usize).copied()
    }

    pub fn move_by(&mut self, by: isize) {
        let last = self.order.len().saturating_sub(1) as isize;
        self.row = (self.row as isize + by).clamp(0, last.max(0)) as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, p: i64, updated: &str) -> Card {
        Card {
            title: id.to_uppercase(),
            priority: p,
            updated: updated.into(),
            ..Card::sample(id)
        }
    }

    #[test]
    fn sorts_by_a_column_and_keeps_the_selection() {
        let mut board = Board::default();
        board.columns[Column::Ready.index()] =
            vec![card("t-b", 2, "2026-01-02"), card("t-c", 0, "2026-01-01")];
        board.columns[Column::Done.index()] = vec![card("t-a", 1, "2026-01-03")];
        let mut l = ListView::default();
        l.rebuild(&board, None);
        let ids = |l: &ListView| -> Vec<String> {
            (0..l.order.len())
                .filter_map(|r| l.card(&board, r).map(|c| c.id.clone()))
                .collect()
        };
        assert_eq!(ids(&l), ["t-b", "t-c", "t-a"], "the board's order");
        l.row = 1; // t-c
        l.sort = ListSort::Priority;
        l.rebuild(&board, Some("t-c"));
        assert_eq!(ids(&l), ["t-c", "t-a", "t-b"]);
        assert_eq!(l.row, 0, "the selection followed t-c");
        l.sort = ListSort::Updated;
        l.rebuild(&board, Some("t-c"));
        assert_eq!(ids(&l), ["t-a", "t-b", "t-c"], "newest first");
        l.reversed = true;
        l.rebuild(&board, None);
        assert_eq!(ids(&l), ["t-c", "t-b", "t-a"]);
        l.move_by(10);
        assert_eq!(l.row, 2);
        l.rebuild(&Board::default(), Some("t-c"));
        assert_eq!((l.row, l.card(&board, 5)), (0, None));
    }
}
