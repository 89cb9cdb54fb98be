//! Generated types and stubs for the chiso contract, plus conversions between
//! `google.type.Date` and [`time::Date`].

pub mod google {
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }
}

// Module nesting mirrors the proto packages: generated code refers to other
// packages through `super::`.
pub mod chiso {
    pub mod assessment {
        pub mod v1 {
            tonic::include_proto!("chiso.assessment.v1");
        }
    }
    pub mod reporting {
        pub mod v1 {
            tonic::include_proto!("chiso.reporting.v1");
        }
    }
    pub mod units {
        pub mod v1 {
            tonic::include_proto!("chiso.units.v1");
        }
    }
}

pub use chiso::{assessment, reporting, units};

mod date;

pub use date::{DateError, from_date, to_date};

/// Encoded `FileDescriptorSet` of the whole contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/chiso_descriptor.bin"));
