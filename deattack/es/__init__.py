"""Evolution strategies for B independent box-constrained problems, on JAX: CMA-ES
(deattack.es.cma_es), with the batched init / ask / tell / step / run interface of
deattack.de, so the attack's slot runner drives either. Image-agnostic, like de/."""
