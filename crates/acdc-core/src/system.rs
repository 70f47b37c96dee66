//! A validated atomic structure.
use crate::error::{Error, Result};

/// An atomic structure: species, Cartesian positions (Å), cell (Å, rows are
/// the lattice vectors a, b, c) and periodicity along each lattice vector.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// Atomic species (any integer; usually atomic numbers).
    pub types: Vec<i32>,
    /// Cartesian positions in Å.
    pub positions: Vec<[f64; 3]>,
    /// Cell matrix in Å, rows = lattice vectors. Zero rows are allowed along
    /// non-periodic directions.
    pub cell: [[f64; 3]; 3],
    /// Periodicity along a, b, c.
    pub pbc: [bool; 3],
}

/// Determinant of a 3×3 matrix.
pub fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

impl System {
    /// Builds and validates a system from flat arrays: `positions` has 3N
    /// values (Å), `cell` 9 values (Å, row-major, rows are lattice vectors).
    pub fn from_flat(types: &[i32], positions: &[f64], cell: &[f64], pbc: [bool; 3]) -> Result<System> {
        if positions.len() != 3 * types.len() {
            return Err(Error::InvalidSystem(format!(
                "positions has {} values but types has {} atoms (expected {})",
                positions.len(),
                types.len(),
                3 * types.len()
            )));
        }
        if cell.len() != 9 {
            return Err(Error::InvalidSystem(format!("cell has {} values (expected 9, or a 3×3 array)", cell.len())));
        }
        let positions: Vec<[f64; 3]> = positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let cell = [[cell[0], cell[1], cell[2]], [cell[3], cell[4], cell[5]], [cell[6], cell[7], cell[8]]];
        System::new(types.to_vec(), positions, cell, pbc)
    }

    /// Builds and validates a system. Errors name the field and value:
    /// non-finite positions or cell entries, and a cell whose periodic
    /// lattice vectors are (nearly) linearly dependent.
    pub fn new(types: Vec<i32>, positions: Vec<[f64; 3]>, cell: [[f64; 3]; 3], pbc: [bool; 3]) -> Result<System> {
        if positions.len() != types.len() {
            return Err(Error::InvalidSystem(format!(
                "positions has {} atoms but types has {} atoms",
                positions.len(),
                types.len()
            )));
        }
        for (i, p) in positions.iter().enumerate() {
            for (k, v) in p.iter().enumerate() {
                if !v.is_finite() {
                    return Err(Error::InvalidSystem(format!(
                        "positions[{i}][{k}] is {v} (atom {i}); positions must be finite"
                    )));
                }
            }
        }
        for (r, row) in cell.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(Error::InvalidSystem(format!("cell[{r}][{k}] is {v}; the cell must be finite")));
                }
            }
        }
        let system = System { types, positions, cell, pbc };
        system.check_cell()?;
        Ok(system)
    }

    fn check_cell(&self) -> Result<()> {
        let names = ["a", "b", "c"];
        let periodic: Vec<usize> = (0..3).filter(|&k| self.pbc[k]).collect();
        for &k in &periodic {
            if norm(self.cell[k]) == 0.0 {
                return Err(Error::InvalidSystem(format!(
                    "cell vector {} is zero but pbc[{k}] is true; give a cell or set pbc[{k}] = false",
                    names[k]
                )));
            }
        }
        // Periodic vectors must be linearly independent; use scale-free measures.
        let singular = |measure: f64| measure < 1e-10;
        match periodic.len() {
            2 => {
                let (a, b) = (self.cell[periodic[0]], self.cell[periodic[1]]);
                let s = norm(cross(a, b)) / (norm(a) * norm(b));
                if singular(s) {
                    return Err(Error::InvalidSystem(format!(
                        "cell is singular: periodic vectors {} = {:?} and {} = {:?} are parallel",
                        names[periodic[0]], a, names[periodic[1]], b
                    )));
                }
            }
            3 => {
                let d = det3(&self.cell);
                let scale = norm(self.cell[0]) * norm(self.cell[1]) * norm(self.cell[2]);
                if singular(d.abs() / scale) {
                    return Err(Error::InvalidSystem(format!(
                        "cell is singular (determinant {d:e} Å³) along periodic directions: {:?}",
                        self.cell
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Number of atoms.
    pub fn size(&self) -> usize {
        self.types.len()
    }

    /// Whether any direction is periodic.
    pub fn is_periodic(&self) -> bool {
        self.pbc.iter().any(|&p| p)
    }

    /// Cell volume in Å³ (absolute value of the determinant).
    pub fn volume(&self) -> f64 {
        det3(&self.cell).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_mismatched_lengths() {
        let e = System::from_flat(&[1, 1, 1, 1], &[0.0; 9], &[0.0; 9], [false; 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid system: positions has 9 values but types has 4 atoms (expected 12)"
        );
    }

    #[test]
    fn rejects_nan_and_singular_cells() {
        let e = System::from_flat(&[1], &[0.0, f64::NAN, 0.0], &[0.0; 9], [false; 3]).unwrap_err();
        assert!(e.to_string().contains("positions[0][1] is NaN"));
        let cell = [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let e = System::from_flat(&[1], &[0.0; 3], &cell, [true; 3]).unwrap_err();
        assert!(e.to_string().contains("singular"), "{e}");
        // the same cell is fine when the degenerate direction is not periodic
        assert!(System::from_flat(&[1], &[0.0; 3], &cell, [true, false, true]).is_ok());
        let e = System::from_flat(&[1], &[0.0; 3], &[0.0; 9], [true, false, false]).unwrap_err();
        assert!(e.to_string().contains("cell vector a is zero"), "{e}");
    }
}
