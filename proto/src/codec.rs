//! The prost codec with small initial buffers, used by the Nacos client services. tonic's
//! default allocates 8 KiB for encoding and decoding every stream; a server holding thousands of
//! client connections (each with a long-lived bi-stream) pays that per connection. Nacos
//! messages are mostly well under 2 KiB, and the buffers still grow when one is larger.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Initial buffer size.
pub const BUFFER_BYTES: usize = 2 * 1024;
/// Encoded bytes after which a stream yields (tonic's default).
pub const YIELD_THRESHOLD: usize = 32 * 1024;

/// A [`Codec`] for prost messages with [`BUFFER_BYTES`] initial buffers.
#[derive(Debug)]
pub struct SmallCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallCodec<T, U> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

impl<T, U> Codec for SmallCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }
}
