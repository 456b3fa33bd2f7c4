-- billd schema, version 7: the catalog's generation, so every process's plans cache
-- knows when products or prices changed, whoever wrote them (DESIGN §9: nothing that
-- several processes must agree on lives in one process's memory).
CREATE TABLE catalog_generation (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION billd_bump_catalog_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_bump AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION billd_bump_catalog_generation();
CREATE TRIGGER prices_bump AFTER INSERT OR UPDATE OR DELETE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION billd_bump_catalog_generation();
