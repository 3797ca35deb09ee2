//! Hand-built SQL for the bulk writes, where sea-query's per-row models cost more than the
//! database's work: many rows per statement, values bound in the backend's style.

use sea_orm::{DbBackend, Statement, Value};

/// Bound values per statement: SQLite allows 32,766 (PostgreSQL 65,535).
pub(crate) const MAX_BOUND_VALUES: usize = 32_000;

/// SQL text with bound values, numbered the way the backend wants them.
pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend, text: &str) -> Sql {
        Sql {
            backend,
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn bind(&mut self, value: impl Into<Value>) {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.values.len().to_string());
            }
            _ => self.text.push('?'),
        }
    }

    /// `(v1, v2, ...)` for one row.
    pub(crate) fn tuple(&mut self, values: impl IntoIterator<Item = Value>) {
        self.text.push('(');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self.text.push(')');
    }

    /// `(v1, ...), (v1, ...)` for many rows: a VALUES list.
    pub(crate) fn tuples<Row: IntoIterator<Item = Value>>(
        &mut self,
        rows: impl IntoIterator<Item = Row>,
    ) {
        for (index, row) in rows.into_iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            self.tuple(row);
        }
    }

    pub(crate) fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}
