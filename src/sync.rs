//! Lock helpers. A panic while a lock was held must not take the node down with it:
//! every structure guarded here stays valid after any single update, so a poisoned
//! lock is simply taken over.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking it over if a panicking thread poisoned it.
pub fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
