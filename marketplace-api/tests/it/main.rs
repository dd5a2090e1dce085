//! The marketplace API through `Router::oneshot`: a buyer's session, the authorization
//! matrix, rate limits and quotas (two instances on one control plane), usage, revenue,
//! versions, and the operational endpoints.

mod fixture;

mod access;
mod buyer;
mod lake;
mod limits;
mod operations;
