"Generative families built on the looped block, one notebook each, registered in elt.method.family.FAMILIES."
