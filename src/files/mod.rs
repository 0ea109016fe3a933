//! Media files on disk (contract §8.5–8.7, §9.4, §9.6): name rules ([`names`]), listing and
//! description ([`listing`]), the storage rule and figures ([`storage`]), retention policies and
//! cleanup ([`retention`]), download URLs ([`download_url`]), opening and deleting strictly below
//! the data directory ([`beneath`]). The file methods' shared bodies, which translate these
//! into JSON-RPC, are `methods::files`; HTTP downloads themselves are served by `net::download`.

pub(crate) mod beneath;
pub(crate) mod download_url;
pub(crate) mod listing;
pub(crate) mod names;
pub(crate) mod retention;
pub(crate) mod storage;
