"The paper's method: the looped block, ILSD, the trainer, and the family protocol every generative family fills in."
