"What runs the reproduction: the model zoo, the results schema, and the papermill runner behind make figures."
