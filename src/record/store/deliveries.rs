//! The delivery-attempt chain's entry points on the store: append, verify and query, each
//! delegating to [`crate::record::delivery`], which owns that chain's schema and walk.

use super::{classify, ChainHead, Store};
use crate::record::delivery::{
    self, DeliveryFilter, DeliveryRecord, DeliveryVerify, StoredDelivery,
};
use crate::record::RecordError;

impl Store {
    /// Append delivery-attempt records to their chain in one durable transaction.
    pub fn append_deliveries(
        &mut self,
        records: &[&DeliveryRecord],
    ) -> Result<ChainHead, RecordError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&self.path, e))?;
        let head = delivery::append_in(&tx, records).map_err(|e| classify(&self.path, e))?;
        tx.commit().map_err(|e| classify(&self.path, e))?;
        Ok(head)
    }

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
