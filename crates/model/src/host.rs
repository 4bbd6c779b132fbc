//! Operations that flex (burn's CPU backend) runs through our own host kernels, registered
//! with burn's backend-extension mechanism (`#[backend_extension]`) and given hand-written
//! backward passes for training (`Autodiff<Flex>`).
//!
//! Other backends never reach these: [`gelu`] checks the device first and otherwise calls
//! burn's own op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::TensorMetadata;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::fastmath;

#[backend_extension(Flex, Autodiff)]
pub trait HostKernels: Backend {
    /// Exact GELU, `0.5 x (1 + erf(x / √2))`.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `grad · gelu'(x)`.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The f32 values of a flex tensor in row-major order (a copy only when it is not contiguous).
fn contiguous_f32(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn f32_tensor(values: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl HostKernels for Flex {
    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu(x);
        }
        let x = contiguous_f32(&x);
        let xs = x.as_slice::<f32>().expect("contiguous f32");
        let mut y = vec![0f32; xs.len()];
        fastmath::gelu_slice(xs, &mut y);
        f32_tensor(y, x.shape())
    }

    fn gelu_exact_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu_backward(x, grad);
        }
        let x = contiguous_f32(&x);
        let g = contiguous_f32(&grad);
        let xs = x.as_slice::<f32>().expect("contiguous f32");
        let gs = g.as_slice::<f32>().expect("contiguous f32");
        let mut out = vec![0f32; xs.len()];
        fastmath::gelu_backward_slice(xs, gs, &mut out);
        f32_tensor(out, x.shape())
    }
}

impl<B: HostKernels, C: CheckpointStrategy> HostKernels for Autodiff<B, C> {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GeluExact;

        impl<B: HostKernels> Backward<B, 1> for GeluExact {
            // the input, kept for the derivative
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let x = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::gelu_exact_backward(x, grad)
                });
            }
        }

        let (x, node) = x.into_parts();
        match GeluExact.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x.clone(), B::gelu_exact(x)),
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_exact(x)),
        }
    }

    fn gelu_exact_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("gelu_exact_backward is only called on the inner backend")
    }
}

/// Whether `device` (autodiff or not) is flex, the backend these kernels serve.
pub fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// Exact GELU: on flex through [`HostKernels::gelu_exact`] (vectorised, multi-threaded), on
/// every other backend burn's `gelu`. The same function either way.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if is_flex(&x.device()) {
        Tensor::from_dispatch(<Dispatch as HostKernels>::gelu_exact(x.into_dispatch()))
    } else {
        burn::tensor::activation::gelu(x)
    }
}
