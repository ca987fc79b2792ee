//! The bind groups of a training step and the uniform buffers they point to, remade by
//! `rebind` whenever a setting they read changes.

use super::GpuTrainer;
use crate::gpu::error::GpuError;
use crate::gpu::kernels::{
    AdamUniform, DsmUniform, GemmUniform, K, MlpUniform, ScheduleUniform, act_id, param_id,
    process_id, uniform_bytes,
};
use crate::nn::{IMPORTANCE_TABLE_SIZE, ImportanceTable};
use crate::nn::{TimeEmbedding, Weighting};

/// Every bind group of a step, in dispatch order.
#[derive(Debug)]
pub(super) struct Binds {
    pub(super) batch: (wgpu::BindGroup, wgpu::BindGroup),
    pub(super) forward: Vec<wgpu::BindGroup>,
    pub(super) head: wgpu::BindGroup,
    pub(super) loss: wgpu::BindGroup,
    pub(super) loss_reduce: (wgpu::BindGroup, wgpu::BindGroup),
    pub(super) head_dw: wgpu::BindGroup,
    pub(super) head_dx: wgpu::BindGroup,
    /// Per hidden layer l (index l): dW and, for l > 0, dX.
    pub(super) backward_dw: Vec<wgpu::BindGroup>,
    pub(super) backward_dx: Vec<Option<wgpu::BindGroup>>,
    pub(super) adam: (wgpu::BindGroup, wgpu::BindGroup),
    /// Uniform buffers the bind groups point to.
    _uniforms: Vec<wgpu::Buffer>,
}

impl GpuTrainer {
    /// Rebuilds the uniforms and bind groups (after the batch, data, schedule or weighting
    /// changed). The weights and Adam's state stay.
    pub(super) fn rebind(&mut self) -> Result<(), GpuError> {
        let binds = self
            .ctx
            .scoped("binding the training buffers", || self.make_binds())??;
        self.binds = Some(binds);
        Ok(())
    }

    fn make_binds(&self) -> Result<Binds, GpuError> {
        let device = &self.ctx.device;
        let k = &self.kernels;
        let net = &self.cfg.net;
        let layers = net.layers();
        let depth = net.depth;
        let width = net.width as u32;
        let in_ld = net.input_dim() as u32;
        let act = act_id(net.activation);
        let b = &self.bufs;
        let batch = b.batch;
        let p = self.num_params as u32;
        let mut uniforms = Vec::new();
        let mut uni = |label: &str, bytes: &[u8]| {
            let buf = uniform_bytes(&self.ctx, label, bytes);
            uniforms.push(buf);
            uniforms.len() - 1
        };

        // DSM: batch construction and loss.
        let emb_half = TimeEmbedding::new(net.embedding).freqs().len() as u32;
        let (weighting, table_weight) = match self.cfg.weighting_used() {
            Weighting::Uniform => (0, 1.0),
            Weighting::InverseSigma2 => (1, 1.0),
            Weighting::Importance => (
                2,
                ImportanceTable::new(&self.cfg.schedule, self.cfg.t_min).weight,
            ),
        };
        let dsm = DsmUniform {
            batch,
            n_data: self.n_data as u32,
            seed: self.cfg.seed,
            weighting,
            t_min: self.cfg.t_min,
            table_weight,
            table_n: IMPORTANCE_TABLE_SIZE as u32,
            param: param_id(net.param),
            emb_half,
            in_ld,
            process: process_id(net.process),
            _pad: 0,
            schedule: ScheduleUniform::new(&self.cfg.schedule),
        };
        let dsm_u = uni("dsm uniform", bytemuck::bytes_of(&dsm));

        // Forward GEMMs.
        let mut fwd_u = Vec::new();
        for (l, layer) in layers.iter().enumerate().take(depth) {
            let g = GemmUniform {
                m: batch,
                n: width,
                k: layer.fan_in as u32,
                lda: layer.fan_in as u32,
                ldb: width,
                ldc: width,
                ld_aux: width,
                b_off: layer.weight_offset as u32,
                bias_off: layer.bias_offset as u32,
                act,
                flag: 1,
                ..GemmUniform::default()
            };
            fwd_u.push(uni(
                &format!("forward layer {l} uniform"),
                bytemuck::bytes_of(&g),
            ));
        }
        let out_layer = layers[depth];
        let head = MlpUniform {
            rows: batch,
            width,
            ld: width,
            act,
            w_off: out_layer.weight_offset as u32,
            b_off: out_layer.bias_offset as u32,
            k_split: b.k_split,
            split_stride: p,
            ..MlpUniform::default()
        };
        let head_u = uni("head uniform", bytemuck::bytes_of(&head));
        // Backward GEMMs.
        let mut dw_u = Vec::new();
        let mut dx_u = Vec::new();
        for (l, layer) in layers.iter().enumerate().take(depth) {
            let dw = GemmUniform {
                m: layer.fan_in as u32 + 1,
                n: width,
                k: batch,
                lda: layer.fan_in as u32,
                ldb: width,
                ldc: width,
                c_off: layer.weight_offset as u32,
                flag: 1,
                k_split: b.k_split,
                c_split_stride: p,
                ..GemmUniform::default()
            };
            dw_u.push(uni(
                &format!("backward dW layer {l} uniform"),
                bytemuck::bytes_of(&dw),
            ));
            let dx = GemmUniform {
                m: batch,
                n: width,
                k: width,
                lda: width,
                ldb: width,
                ldc: width,
                ld_aux: width,
                b_off: layer.weight_offset as u32,
                act,
                ..GemmUniform::default()
            };
            dx_u.push(uni(
                &format!("backward dX layer {l} uniform"),
                bytemuck::bytes_of(&dx),
            ));
        }
        let adam = AdamUniform {
            n: p,
            splits: b.splits,
            split_stride: p,
            _pad: 0,
        };
        let adam_u = uni("adam uniform", bytemuck::bytes_of(&adam));
        let u = |i: usize| &uniforms[i];

        let slot = |kernel: K, label: &str| {
            k.get(kernel)
                .bind_slots(device, label, &self.slots)
                .ok_or_else(|| GpuError::Config(format!("{label}: kernel has no slot layout")))
        };
        let batch_bind = k.get(K::DsmBatch).bind(
            device,
            "dsm batch",
            &[
                u(dsm_u),
                &self.data,
                &self.table,
                &self.freqs,
                &b.input,
                &b.samples,
            ],
        );
        let forward = (0..depth)
            .map(|l| {
                let src = if l == 0 { &b.input } else { &b.h[l - 1] };
                k.get(K::GemmForward).bind(
                    device,
                    &format!("forward layer {l}"),
                    &[u(fwd_u[l]), src, &self.params, &b.z[l], &b.h[l]],
                )
            })
            .collect();
        let head_bind = k.get(K::Head).bind(
            device,
            "head",
            &[
                u(head_u),
                &self.params,
                &b.h[depth - 1],
                &b.out,
                &self.dummy,
                &self.freqs,
            ],
        );
        let loss = k.get(K::DsmLoss).bind(
            device,
            "dsm loss",
            &[u(dsm_u), &b.samples, &b.out, &b.d_out, &b.loss_partial],
        );
        let loss_reduce = k.get(K::DsmLossReduce).bind(
            device,
            "dsm loss reduce",
            &[u(dsm_u), &b.loss_partial, &self.ring, &self.status],
        );
        let head_dw = k.get(K::HeadDw).bind(
            device,
            "head dW",
            &[
                u(head_u),
                &self.params,
                &b.d_out,
                &b.partials,
                &b.h[depth - 1],
                &self.freqs,
            ],
        );
        let head_dx = k.get(K::HeadDx).bind(
            device,
            "head dX",
            &[
                u(head_u),
                &self.params,
                &b.d_out,
                &b.dz[depth - 1],
                &b.z[depth - 1],
                &self.freqs,
            ],
        );
        let backward_dw = (0..depth)
            .map(|l| {
                let a = if l == 0 { &b.input } else { &b.h[l - 1] };
                k.get(K::GemmBackwardDw).bind(
                    device,
                    &format!("backward dW layer {l}"),
                    &[u(dw_u[l]), a, &b.dz[l], &b.partials, &self.dummy],
                )
            })
            .collect();
        let backward_dx = (0..depth)
            .map(|l| {
                (l > 0).then(|| {
                    k.get(K::GemmBackwardDx).bind(
                        device,
                        &format!("backward dX layer {l}"),
                        &[
                            u(dx_u[l]),
                            &b.dz[l],
                            &self.params,
                            &b.dz[l - 1],
                            &b.z[l - 1],
                        ],
                    )
                })
            })
            .collect();
        let adam_bind = k.get(K::Adam).bind(
            device,
            "adam",
            &[
                u(adam_u),
                &self.params,
                &self.moments,
                &self.ema,
                &b.partials,
                &self.grad,
                &self.backup,
                &self.status,
            ],
        );
        Ok(Binds {
            batch: (batch_bind, slot(K::DsmBatch, "dsm batch slots")?),
            forward,
            head: head_bind,
            loss,
            loss_reduce: (loss_reduce, slot(K::DsmLossReduce, "loss reduce slots")?),
            head_dw,
            head_dx,
            backward_dw,
            backward_dx,
            adam: (adam_bind, slot(K::Adam, "adam slots")?),
            _uniforms: uniforms,
        })
    }
}
