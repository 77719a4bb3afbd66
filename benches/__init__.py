"""The built-in bench suite: what `commitbench run` measures by default.

Each module here is a plain bench module. The runner puts this directory itself on the
worker's PYTHONPATH, so a module's name is its file name (`matmul`) and its cases read
`matmul.<function>[k=v,...]`. Files starting with `_` hold shared code, not benches
(`_model.py`: the Transformer LM; `_suite.py`: helpers; `_allreduce_rank.py`: the
torchrun entry point). Every bench has a `smoke` profile (tiny sizes, CPU, seconds) and a
`full` profile (the seed workloads' real sizes, a GPU); each module's docstring names its
seed, its sizes and its FLOP convention.

Case ids and metrics (the dashboards query these names; times are seconds, memory MiB).
Every `ctx.time` metric `<t>` given FLOPs also has `<t>.tflops` (TFLOP/s; TOP/s for
int8) and, on a GPU in peaks.PEAKS, `<t>.peak_pct` (% of the dense datasheet peak for
the dtype). The worker adds `peak_rss` to every ok case and `peak_cuda_mem` where CUDA
was used; the runner adds the device-sample summaries (gpu_util, gpu_mem, gpu_power,
energy, ...).

    case id (params)                          metrics
    ---------------------------------------   -------------------------------------------
    matmul.dense[dtype,shape]                 time*, weight_mem
      dtype fp16|bf16; shape 4096x12288|5120x15360|12288x49152
    matmul.int8[shape]                        time*, matmul* (int8), weight_mem, rel_err
    matmul.linear8bit[shape,threshold]        time* (int8), rel_err, weight_mem
      threshold 0.0|6.0
    matmul.nf4[shape]                         time* (fp16 peak), rel_err, weight_mem
    optimizers.step[optimizer]                train_step, optimizer_step, state_mem
      optimizer adamw|adamw8bit|paged_adamw|paged_adamw8bit
    optimizers.pressure[optimizer]            free_after_filler, train_step,
      optimizer paged_adamw|paged_adamw8bit   optimizer_step, state_mem
    transformer.lm[context,dtype,size]        forward*, forward_backward*, train_step*
      context 512; dtype fp32|bf16;           (train_step.peak_pct is the MFU),
      size small|medium|large|xl|2.7B         tokens_per_s, params
    attention.single_head[d,impl,seq]         forward*, backward*, memory_before_backward (GPU),
      d 16|32|64|128; impl naive|sdpa|        compile_time (compiled only)
      compiled; seq 256|1024|4096|8192|16384
    generation.decode[mode]                   ttft, next_token, next_token.p95,
      mode eager|compiled                     tokens_per_s, compile_time (compiled only)
    hf_llama.generate[attn,batch,cache,       ttft, next_token, next_token.p95,
      mode,prompt,size]                       tokens_per_s (batch x tokens), params
      size 135M|360M|1B; batch 1|4;
      prompt 128|1024; attn sdpa;
      cache dynamic; mode eager
    hf_llama.variants[attn,batch,cache,       as generate, and compile_time (compiled
      mode,prompt,size]                       only)
      attn eager|sdpa|flash_attention_2;
      cache dynamic|static; mode eager|
      compiled; size 135M; batch 1;
      prompt 128
    allreduce.all_reduce[size]                time, algbw, busbw
      size 1MB|10MB|100MB|1GB

`*` marks a `ctx.time` metric with FLOPs, which also has `.tflops` and `.peak_pct`.

Units beyond s and MiB: `.tflops` TFLOP/s, `.peak_pct` %, `tokens_per_s` tokens/s,
`algbw`/`busbw` GB/s (1e9 bytes), `rel_err` and `params` dimensionless ("1").

`hf_llama` needs the `hf` extra (transformers; `bench` includes it): without it every
case is skipped with that reason, as is flash_attention_2 without CUDA and flash_attn.
"""
