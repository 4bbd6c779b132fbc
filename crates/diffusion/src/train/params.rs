//! Parameters and gradients as flat vectors, on the host or on the device, in the module's
//! visiting order (the order of checkpoints).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::{Device, Tensor, TensorData};

/// Every float parameter of `model` as `(shape, values)`, in visiting order.
pub fn params_to_host<M: Module>(model: &M) -> Vec<(Vec<usize>, Vec<f32>)> {
    struct Collect(Vec<(Vec<usize>, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let data = t.into_data().convert::<f32>();
            self.0.push((
                shape,
                data.try_into_vec::<f32>().expect("f32 parameter data"),
            ));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// Replaces every float parameter of `model` (visiting order) with `value(i, plain_device)`, a
/// flat tensor reshaped to the parameter's shape, keeping whether each one tracks gradients.
pub(crate) fn map_params<M: Module>(
    model: M,
    value: &mut dyn FnMut(usize, &Device) -> Tensor<1>,
) -> M {
    struct Load<'a> {
        value: &'a mut dyn FnMut(usize, &Device) -> Tensor<1>,
        i: usize,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let i = self.i;
            self.i += 1;
            param.map(|t| {
                let grad = t.is_require_grad();
                let device = t.device();
                let v = (self.value)(i, &device.clone().inner()).reshape(t.dims());
                let new = if device.is_autodiff() {
                    Tensor::<D>::from_inner(v)
                } else {
                    v
                };
                if grad {
                    new.require_grad()
                } else {
                    new
                }
            })
        }
    }
    model.map(&mut Load { value, i: 0 })
}

/// Replaces every float parameter of `model` with `values` (visiting order; shapes checked by
/// the caller), keeping whether each one tracks gradients.
pub fn params_from_host<M: Module>(model: M, values: &[&[f32]]) -> M {
    map_params(model, &mut |i, device| host_tensor(values[i], device))
}

pub(crate) fn grads_to_host<M: Module>(model: &M, grads: &Gradients) -> Vec<Option<Vec<f32>>> {
    grads_on_device(model, grads)
        .into_iter()
        .map(|g| g.map(|t| tensor_to_host(&t)))
        .collect()
}

/// A flat tensor on `device` holding a copy of `v`.
pub(crate) fn host_tensor(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

pub(crate) fn to_device<'a>(
    values: impl IntoIterator<Item = &'a [f32]>,
    device: &Device,
) -> Vec<Tensor<1>> {
    values.into_iter().map(|v| host_tensor(v, device)).collect()
}

pub(crate) fn tensor_to_host(t: &Tensor<1>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

pub(crate) fn to_host(values: &[Tensor<1>]) -> Vec<Vec<f32>> {
    values.iter().map(tensor_to_host).collect()
}

/// Every parameter's gradient, flattened, left on the device.
pub(crate) fn grads_on_device<M: Module>(model: &M, grads: &Gradients) -> Vec<Option<Tensor<1>>> {
    struct Collect<'a> {
        grads: &'a Gradients,
        out: Vec<Option<Tensor<1>>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param.val().grad(self.grads).map(|g| {
                let n = g.dims().iter().product::<usize>();
                g.reshape([n])
            });
            self.out.push(g);
        }
    }
    let mut c = Collect {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut c);
    c.out
}

/// Replaces every float parameter of `model` with the flattened device tensors `values`
/// (visiting order), keeping whether each one tracks gradients.
pub(crate) fn params_from_device<M: Module>(model: M, values: &[Tensor<1>]) -> M {
    map_params(model, &mut |i, _| values[i].clone())
}
