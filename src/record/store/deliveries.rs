//! The delivery-attempt chain's entry points on the store: verify and query, each
//! delegating to [`crate::record::delivery`], which owns that chain's schema and walk
//! (appending goes with the decision records' commits: [`Store::append_batch`]).

use super::Store;
use crate::record::delivery::{self, DeliveryFilter, DeliveryVerify, StoredDelivery};
use crate::record::RecordError;

impl Store {
    /// Walk the delivery-attempt chain ([`delivery::verify`]).
    pub fn verify_deliveries(&self) -> Result<DeliveryVerify, RecordError> {
        delivery::verify(&self.conn).map_err(|message| self.corrupt(message))
    }

    /// Delivery-attempt records matching `filter`, in chain order.
    pub fn query_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, RecordError> {
        delivery::query(&self.conn, filter).map_err(|message| self.corrupt(message))
    }

    fn corrupt(&self, message: String) -> RecordError {
        RecordError::Corrupt {
            path: self.path.clone(),
            seq: 0,
            message,
        }
    }
}
