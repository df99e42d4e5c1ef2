"""Benchmark objectives for the DE tests, batched as the engine wants them."""

import jax.numpy as jnp
import numpy as np

SPHERE, RASTRIGIN, ROSENBROCK = 0, 1, 2
# Boxes (low, high) per function, the customary ones.
BOXES = {SPHERE: (-5.0, 5.0), RASTRIGIN: (-5.12, 5.12), ROSENBROCK: (-2.0, 2.0)}


def sphere(x):
    return jnp.sum(x**2, axis=-1)


def rastrigin(x):
    return 10.0 * x.shape[-1] + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x), axis=-1)


def rosenbrock(x):
    return jnp.sum(100.0 * (x[..., 1:] - x[..., :-1]**2)**2 + (1.0 - x[..., :-1])**2,
                   axis=-1)


def mixed_fitness(candidates, context, active):
    """Each problem b minimises function context["function"][b] and is solved
    below context["tolerance"][b]. candidates [B, P, D]."""
    del active  # cheap: evaluate every problem
    function = context["function"][:, None]
    fitness = jnp.where(function == SPHERE, sphere(candidates),
                        jnp.where(function == RASTRIGIN, rastrigin(candidates),
                                  rosenbrock(candidates)))
    return fitness, fitness < context["tolerance"][:, None]


def sphere_fitness(candidates, context, active):
    """Sphere, solved below context [B]. candidates [B, P, D]."""
    del active
    fitness = sphere(candidates)
    return fitness, fitness < context[:, None]


def boxes(functions, num_dims):
    """[B, D] lower and upper bounds for a list of function ids."""
    lower = np.array([[BOXES[f][0]] * num_dims for f in functions], np.float32)
    upper = np.array([[BOXES[f][1]] * num_dims for f in functions], np.float32)
    return jnp.asarray(lower), jnp.asarray(upper)
