-- billd schema, version 7: the catalog's generation, so every process's plans cache
-- knows when products or prices changed, whoever wrote them (DESIGN §9: nothing that
-- several processes must agree on lives in one process's memory).
CREATE TABLE catalog_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER products_insert_bumps AFTER INSERT ON products
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER products_update_bumps AFTER UPDATE ON products
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER products_delete_bumps AFTER DELETE ON products
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER prices_insert_bumps AFTER INSERT ON prices
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER prices_update_bumps AFTER UPDATE ON prices
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER prices_delete_bumps AFTER DELETE ON prices
BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
